/* offer.h - roomdrop's file offers in the command-line client (PROTOCOL.md sections 13
 * and 17): `roomdrop offer NICK|--everyone PATH...` sends, `roomdrop listen` with
 * --accept-all, --reject-all or --accept-from NICK (and --into DIR, --take PATTERN)
 * receives. The bytes of an offer to one user go over a direct link between the two
 * clients when one is verified within about 2 s (direct.h), else through the server (the
 * relay, OFFER_DATA; room offers always), as a stream of the file application's own frames: GET_BEGIN (xfer_id = the file's index in the offer),
 * GET_CHUNK..., GET_END per file sent, XFER_CANCEL for a file the sender cannot send.
 */
#ifndef RD_CLIENT_OFFER_H
#define RD_CLIENT_OFFER_H

#include "session.h"

/* What listen does with the file offers it receives. */
enum cli_offer_policy {
	CLI_OFFERS_SHOW = 0, /* print them; the offer waits for an answer from elsewhere */
	CLI_OFFERS_ACCEPT_ALL,
	CLI_OFFERS_REJECT_ALL,
	CLI_OFFERS_ACCEPT_FROM, /* accept from one nickname, reject the others */
	CLI_OFFERS_ASK          /* the shell: ask the user (cli_offers_question / _reply) */
};

struct cli_offer_rules {
	enum cli_offer_policy policy;
	const char *from; /* CLI_OFFERS_ACCEPT_FROM */
	const char *into; /* where accepted files go (default ".") */
	const char *take; /* a pattern (fnmatch): take only the files whose path or name
			   * matches it (NULL = every file) */
	int p2p;          /* enum cli_p2p: CLI_P2P_NEVER = only through the server */
};

/* roomdrop offer: offer the files and folders argv[0..argc) to `to` (NULL = every other
 * member of the room), wait for the answers, send what was accepted (directly or through
 * the server, by s->o->p2p),
 * wait for each recipient's receipt and end the offer. Returns the exit code: CLI_OK when
 * every recipient that accepted saved every file it took; CLI_EREJECTED when nobody
 * accepted (rejected, expired); CLI_EVERIFY when a file failed at a recipient or a
 * recipient left before its receipt; CLI_ENODIRECT with --p2p only and no direct link
 * (the offer is ended, nothing sent); others as for every command. */
int cli_offer(struct cli_session *s, const char *to, int argc, char **argv);

/* Make listen handle file offers by these rules; cli_offers_pending answers what the
 * callbacks decided (call it after each rd_conn_poll: answers are requests, which the
 * callbacks may not make themselves). cli_offers_stop frees what is left. */
int cli_offers_listen(struct cli_session *s, const struct cli_offer_rules *rules);
int cli_offers_pending(struct cli_session *s);
void cli_offers_stop(struct cli_session *s);

/* CLI_OFFERS_ASK: 1 with the question to show (the prompt) when an offer waits for the
 * user's answer, else 0. cli_offers_reply takes a line as the answer ("y" accept, "s" pick
 * file by file, anything else reject; then "y"/"n" per file) and returns 1, or 0 when no
 * question is pending (the line is the shell's as usual). */
int cli_offers_question(struct cli_session *s, char *out, size_t cap);
int cli_offers_reply(struct cli_session *s, const char *line);

#endif
