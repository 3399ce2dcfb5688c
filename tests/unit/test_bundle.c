/* test_bundle.c - the files of an offer (client/bundle.c, shared/files/rdf_proto.c): paths
 * a recipient accepts and refuses, the descriptor and the accept's data on the wire, a
 * folder walked without following links, the one-line summary, and .part files opened
 * below the chosen folder without ever passing through a link. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../client/bundle.h"
#include "rd_buf.h"
#include "rd_err.h"

static int path_ok(const char *s)
{
	char why[200];

	return rdf_path_check(s, strlen(s), why, sizeof(why)) == 0;
}

static void test_path_rules(void **state)
{
	char deep[40 * 2 + 8] = "", long_path[RDF_PATH_MAX + 8];

	(void)state;
	assert_true(path_ok("a"));
	assert_true(path_ok("photos/2026/a.jpg"));
	assert_true(path_ok("\xc3\xa9t\xc3\xa9.txt")); /* "été.txt" in NFC */
	assert_false(path_ok(""));
	assert_false(path_ok("/etc/passwd"));
	assert_false(path_ok("../x"));
	assert_false(path_ok("a/../b"));
	assert_false(path_ok("a/./b"));
	assert_false(path_ok("."));
	assert_false(path_ok("a//b"));
	assert_false(path_ok("a/"));
	assert_false(path_ok("a\\b"));
	assert_false(path_ok("a/b\x01"));
	assert_false(path_ok("photos/\xe2\x80\xae"
			     "gpj.exe"));                /* U+202E */
	assert_false(path_ok("e\xcc\x81t\xc3\xa9.txt")); /* NFD */
	for (int i = 0; i < 33; i++)
		strcat(deep, "d/");
	strcat(deep, "f");
	assert_false(path_ok(deep));
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	assert_false(path_ok(long_path));
	/* with its length given, a NUL inside is refused too */
	assert_int_equal(rdf_path_check("a\0b", 3, NULL, 0), RDF_E_BAD_FILENAME);
}

static void test_offer_and_accept_round_trip(void **state)
{
	struct rdf_offer_entry e[3] = { { "report.pdf", 1000, 1 },
					{ "photos/a.jpg", 0, 2 },
					{ "photos/b.jpg", 1ull << 40, 3 } };
	struct rdf_accept_entry a[3] = { { 1, 0 }, { 0, 0 }, { 1, 4096 } };
	struct rdf_file_offer o = { 3, e }, d;
	struct rdf_file_accept acc = { 3, a }, da;
	struct rd_buf b;
	char why[200];

	(void)state;
	rd_buf_init(&b, 1 << 20);
	assert_int_equal(rdf_file_offer_encode(&o, &b), 0);
	/* u32 count, then per file: str path, u64 size, u64 mtime_ms */
	assert_int_equal(b.len, 4 + (2 + 10 + 16) + (2 + 12 + 16) + (2 + 12 + 16));
	assert_memory_equal(b.data, "\x00\x00\x00\x03\x00\x0areport.pdf", 16);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), 0);
	assert_int_equal(d.count, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(d.items[i].path, e[i].path);
		assert_true(d.items[i].size == e[i].size);
		assert_true(d.items[i].mtime_ms == e[i].mtime_ms);
	}
	rdf_file_offer_clear(&d);
	assert_null(d.items);

	b.len = 0;
	assert_int_equal(rdf_file_accept_encode(&acc, &b), 0);
	assert_int_equal(b.len, 4 + 3 * 9);
	assert_int_equal(rdf_file_accept_decode(b.data, b.len, &da), 0);
	assert_int_equal(da.count, 3);
	assert_int_equal(da.items[2].take, 1);
	assert_true(da.items[2].offset == 4096);
	rdf_file_accept_clear(&da);

	/* PROTOCOL.md section 17's example, byte for byte */
	{
		static const uint8_t doc_offer[] = { 0,   0,   0, 1, 0, 5, 'a', '.', 't',
						     'x', 't', 0, 0, 0, 0, 0,   0,   0,
						     5,   0,   0, 0, 0, 0, 0,   3,   0xe8 };
		static const uint8_t doc_accept[] = { 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2 };
		struct rdf_offer_entry one = { "a.txt", 5, 1000 };
		struct rdf_accept_entry take = { 1, 2 };
		struct rdf_file_offer o1 = { 1, &one };
		struct rdf_file_accept a1 = { 1, &take };

		b.len = 0;
		assert_int_equal(rdf_file_offer_encode(&o1, &b), 0);
		assert_int_equal(b.len, sizeof(doc_offer));
		assert_memory_equal(b.data, doc_offer, sizeof(doc_offer));
		b.len = 0;
		assert_int_equal(rdf_file_accept_encode(&a1, &b), 0);
		assert_int_equal(b.len, sizeof(doc_accept));
		assert_memory_equal(b.data, doc_accept, sizeof(doc_accept));
	}

	/* the strict encoder refuses what a recipient would refuse */
	strcpy(e[1].path, "../evil");
	b.len = 0;
	assert_int_equal(rdf_file_offer_encode(&o, &b), RD_ERR_INVAL);
	assert_int_equal(b.len, 0);
	rd_buf_free(&b);
}

/* A descriptor of the given paths, written by hand (a hostile sender skips the checks). */
static void raw_offer(struct rd_buf *b, const char *const *paths, uint32_t n)
{
	b->len = 0;
	assert_int_equal(rd_buf_put_u32(b, n), 0);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(rd_buf_put_str(b, paths[i], strlen(paths[i])), 0);
		assert_int_equal(rd_buf_put_u64(b, 1), 0);
		assert_int_equal(rd_buf_put_u64(b, 2), 0);
	}
}

static void test_hostile_descriptors_refused(void **state)
{
	static const char *const evil[] = { "ok.txt", "../../.bashrc" };
	static const char *const abs[] = { "/etc/cron.d/x" };
	static const char *const dup[] = { "a.txt", "A.TXT" };
	static const char *const cover[] = { "docs", "docs/a.txt" };
	static const char *const fine[] = { "docs/a.txt", "docs2/a.txt" };
	struct rdf_file_offer d;
	struct rd_buf b;
	char why[200];

	(void)state;
	rd_buf_init(&b, 1 << 20);
	raw_offer(&b, evil, 2);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), RD_ERR_INVAL);
	assert_non_null(strstr(why, "file 2"));
	assert_null(d.items);
	raw_offer(&b, abs, 1);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), RD_ERR_INVAL);
	assert_non_null(strstr(why, "absolute"));
	raw_offer(&b, dup, 2);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), RD_ERR_INVAL);
	assert_non_null(strstr(why, "same path"));
	raw_offer(&b, cover, 2);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), RD_ERR_INVAL);
	raw_offer(&b, fine, 0);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), RD_ERR_INVAL);
	raw_offer(&b, fine, 2);
	assert_int_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), 0);
	rdf_file_offer_clear(&d);
	/* a lying count: malformed, nothing allocated */
	b.len = 0;
	assert_int_equal(rd_buf_put_u32(&b, 1000000), 0);
	assert_int_not_equal(rdf_file_offer_decode(b.data, b.len, &d, why, sizeof(why)), 0);
	assert_null(d.items);
	rd_buf_free(&b);
}

struct tree {
	char root[64];
};

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char p[256];

	strcpy(t->root, "/tmp/rd-bundle-XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(p, sizeof(p), "%s/top", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/top/sub", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/top/a.txt", t->root);
	put_file(p, "hello");
	snprintf(p, sizeof(p), "%s/top/sub/b.bin", t->root);
	put_file(p, "0123456789");
	snprintf(p, sizeof(p), "%s/top/link", t->root);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/top/sub/fifo", t->root);
	assert_int_equal(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/dest", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/elsewhere", t->root);
	assert_int_equal(mkdir(p, 0755), 0);
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

static const struct bundle_file *find(const struct bundle *b, const char *path)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->files[i].path, path) == 0)
			return &b->files[i];
	return NULL;
}

static void test_walk_skips_links_and_special_files(void **state)
{
	struct tree *t = *state;
	struct bundle b = { 0 };
	char p[256], why[512];

	snprintf(p, sizeof(p), "%s/top/", t->root); /* a trailing slash is the folder too */
	assert_int_equal(bundle_add(&b, p, why, sizeof(why)), 0);
	assert_int_equal(b.n, 2);
	assert_non_null(find(&b, "top/a.txt"));
	assert_non_null(find(&b, "top/sub/b.bin"));
	assert_true(find(&b, "top/sub/b.bin")->size == 10);
	assert_int_equal(b.skipped, 2); /* the link to /etc and the fifo */
	assert_true(b.total == 15);
	/* a single file is offered under its own name; the same name twice is refused */
	snprintf(p, sizeof(p), "%s/top/sub/b.bin", t->root);
	assert_int_equal(bundle_add(&b, p, why, sizeof(why)), 0);
	assert_non_null(find(&b, "b.bin"));
	assert_int_equal(bundle_add(&b, p, why, sizeof(why)), RD_ERR_INVAL);
	assert_non_null(strstr(why, "both"));
	snprintf(p, sizeof(p), "%s/top/none", t->root);
	assert_int_equal(bundle_add(&b, p, why, sizeof(why)), RD_ERR_NOT_FOUND);
	bundle_free(&b);

	/* a name inside the folder that no recipient would accept: the whole add fails */
	snprintf(p, sizeof(p), "%s/top/bad\x01name", t->root);
	put_file(p, "x");
	snprintf(p, sizeof(p), "%s/top", t->root);
	assert_int_equal(bundle_add(&b, p, why, sizeof(why)), RD_ERR_INVAL);
	assert_non_null(strstr(why, "bad\\x01name"));
	bundle_free(&b);
}

static void test_summary_line(void **state)
{
	struct rdf_offer_entry e[4] = { { "report.pdf", 1000000, 0 },
					{ "photos/a.jpg", 100000000, 0 },
					{ "photos/b/c.jpg", 100000000, 0 },
					{ "notes.txt", 1000000000, 0 } };
	struct rdf_file_offer o = { 4, e };
	char out[200], small[40];

	(void)state;
	bundle_summary(&o, out, sizeof(out));
	assert_string_equal(out, "4 files (1.2 GB): report.pdf, photos/, notes.txt");
	bundle_summary(&o, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	assert_non_null(strstr(small, "..."));
	strcpy(e[0].path, "evil\xe2\x80\xae"
			  "fdp.exe");
	bundle_summary(&o, out, sizeof(out));
	assert_null(strstr(out, "\xe2\x80\xae")); /* escaped for display */
}

static void test_open_part_never_through_a_link(void **state)
{
	struct tree *t = *state;
	char p[256], leaf[RD_NAME_BUF];
	uint64_t have = 99;
	int dfd, parent, part;

	snprintf(p, sizeof(p), "%s/dest", t->root);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(bundle_open_part(dfd, "photos/2026/a.jpg", &parent, &part, leaf,
					  sizeof(leaf), &have),
			 0);
	assert_string_equal(leaf, "a.jpg");
	assert_true(have == 0);
	assert_int_equal(write(part, "12345", 5), 5);
	close(part);
	close(parent);
	snprintf(p, sizeof(p), "%s/dest/photos/2026/a.jpg.part", t->root);
	assert_int_equal(access(p, F_OK), 0);
	/* again: the bytes already held */
	assert_int_equal(bundle_open_part(dfd, "photos/2026/a.jpg", &parent, &part, leaf,
					  sizeof(leaf), &have),
			 0);
	assert_true(have == 5);
	close(part);
	close(parent);

	/* a link planted where a folder should be: refused, nothing written through it */
	snprintf(p, sizeof(p), "%s/dest/sub", t->root);
	char target[256];
	snprintf(target, sizeof(target), "%s/elsewhere", t->root);
	assert_int_equal(symlink(target, p), 0);
	errno = 0;
	assert_int_equal(bundle_open_part(dfd, "sub/x.txt", &parent, &part, leaf, sizeof(leaf),
					  &have),
			 RD_ERR_SYSTEM);
	assert_true(errno == ELOOP || errno == ENOTDIR);
	snprintf(p, sizeof(p), "%s/elsewhere/x.txt.part", t->root);
	assert_int_equal(access(p, F_OK), -1);
	/* and a link as the .part itself */
	snprintf(p, sizeof(p), "%s/dest/y.txt.part", t->root);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(bundle_open_part(dfd, "y.txt", &parent, &part, leaf, sizeof(leaf), &have),
			 RD_ERR_SYSTEM);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_rules),
		cmocka_unit_test(test_offer_and_accept_round_trip),
		cmocka_unit_test(test_hostile_descriptors_refused),
		cmocka_unit_test_setup_teardown(test_walk_skips_links_and_special_files, tree_setup,
						tree_teardown),
		cmocka_unit_test(test_summary_line),
		cmocka_unit_test_setup_teardown(test_open_part_never_through_a_link, tree_setup,
						tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
