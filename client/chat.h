/* chat.h - direct chats in the shell (rd_chat.h; PROTOCOL.md sections 14.4 and 14.5).
 *
 * `/p2p NICK` asks NICK for a direct link; the other shell asks "alice asks for a direct
 * chat - accept? [y/N]". While a link is up, `/msg NICK` goes over it ("-> bob (direct)");
 * without one (refused, unreachable, broken) /msg goes through the server and says so.
 * `/direct on|off` switches the room to direct mode (the server refuses it above
 * RD_ROOM_DIRECT_MAX members): then every pair of members is linked (the member whose
 * nickname sorts first asks, the other accepts without a question), room messages go
 * over the links, and through the server (SAY_EXCEPT) only to the members without one.
 *
 * Everything runs on the shell's thread. The callback (on_chat, from the connection's
 * dispatch) only records; cli_chat_pending, called by the shell's loop, makes the
 * requests (answers, links), one link per turn of the shell's loop. Making a link blocks
 * the shell for at most the introduction and race deadlines (about 8 s when the other
 * side never answers; a room link's question waits 10 s), serving the server connection
 * meanwhile; between two links the shell reads the terminal and its links.
 *
 * ROOMDROP_TEST_P2P (tests only, as for file offers in direct.h): "loopback" listens on
 * 127.0.0.1 and reports no interface address; "unreachable" reports a closed port and
 * dials nothing, so no link can be made with this client.
 */
#ifndef RD_CLIENT_CHAT_H
#define RD_CLIENT_CHAT_H

#include <poll.h>
#include <stddef.h>

#include "session.h"

#define CLI_CHAT_LINKS 16 /* direct links a shell holds at once */

/* Set s up for direct chats (s->on_chat). 0, or -1 when out of memory. */
int cli_chat_init(struct cli_session *s);
void cli_chat_stop(struct cli_session *s);

/* /p2p NICK: ask, wait, link. Prints what came of it; returns an exit code (CLI_OK also
 * when there is no link: /msg then goes through the server). */
int cli_chat_open(struct cli_session *s, const char *nick);
/* /msg NICK TEXT over the link: 1 sent (and said), 0 when there is no link (the caller
 * sends through the server; *said is 1 when the shell should add "(through the
 * server)": a link was tried or broke). */
int cli_chat_msg(struct cli_session *s, const char *nick, const char *text, int *said);
/* A line said to the room: 1 when the room is in direct mode and it was sent (over the
 * links, and through the server to the members without one), 0 to say it as usual.
 * Negative: the server connection's error. */
int cli_chat_say(struct cli_session *s, const char *text);
/* /direct on|off: returns an exit code (messages printed). */
int cli_chat_direct(struct cli_session *s, int on);

/* A question waiting for the user: 1 with the prompt in out. cli_chat_reply takes the
 * line as the answer ("y" accepts, anything else refuses) and returns 1, or 0 when no
 * question waits. */
int cli_chat_question(struct cli_session *s, char *out, size_t cap);
int cli_chat_reply(struct cli_session *s, const char *line);
/* What the callbacks left to do (accept room links, ask for new ones, list the room).
 * 0, or the connection's error. */
int cli_chat_pending(struct cli_session *s);
/* The server connection is gone: forget the room's mode and the questions (the server
 * tells them again after the shell is back in its room); links stay. */
void cli_chat_offline(struct cli_session *s);
/* 1 when cli_chat_pending has work left (it came while it was busy), or made requests
 * (frames that arrived meanwhile may sit in the connection's buffer, which poll() does
 * not see): poll without a wait, so that rd_conn_poll dispatches them. */
int cli_chat_busy(struct cli_session *s);

/* The links' descriptors for the shell's poll (at most cap); after poll, cli_chat_events
 * with the same entries reads them and prints the messages. */
size_t cli_chat_pollfds(struct cli_session *s, struct pollfd *fds, size_t cap);
void cli_chat_events(struct cli_session *s, const struct pollfd *fds, size_t n);

#endif
