/* lineedit.h - line editing, history and tab completion for the REPL: the
 * host's job, so it lives in the host (ipkrun), not in libipk.
 *
 * ipkrun links libedit and uses its readline interface directly. Lua reaches
 * these functions through FFI on the symbols ipkrun exports (ffi.C; see
 * ipk.core's `host`): under plain luajit with libipk.so they do not exist
 * and the REPL reads plain lines. Completion candidates come from a word
 * list Lua sets (e.g. every ipk.* name): C never calls Lua, it matches
 * prefixes in C. Not thread-safe: the REPL runs on the main thread.
 */
#ifndef IPK_HOST_LINEEDIT_H
#define IPK_HOST_LINEEDIT_H
#include <stddef.h>

/* Replace the completion word list (copied). Returns 0 or -1 (out of memory;
 * the old list stays). */
int ipk_lineedit_set_words(const char *const *words, size_t n);
/* The state-th (0-based) word starting with prefix, in list order, or NULL
 * when there are no more. The pointer stays valid until the next
 * ipk_lineedit_set_words. This is what the TAB key offers. */
const char *ipk_lineedit_match(const char *prefix, int state);
/* 1 when line editing works in this process (stdin and stdout are what
 * readline needs; libedit is linked), 0 otherwise. */
int ipk_lineedit_available(void);
/* Read a line with editing, history and completion. Returns a malloc'd
 * line (caller free()s) or NULL on EOF. */
char *ipk_lineedit_read(const char *prompt);
/* Add a line to the history (empty lines are not kept). */
void ipk_lineedit_add_history(const char *line);

#endif
