/* ipk/lineedit.h - line editing, history and tab completion for the REPL.
 *
 * Uses libedit's readline interface when the process has it (ipkrun links
 * libedit; symbols are looked up at run time with dlsym so libipk.so does not
 * depend on libedit). Completion candidates come from a word list Lua sets
 * (e.g. every ipk.* name): C never calls Lua, it matches prefixes in C.
 */
#ifndef IPK_LINEEDIT_H
#define IPK_LINEEDIT_H
#include <stddef.h>
#include "err.h"

/* Replace the completion word list (copied). Errors: IPK_ENOMEM. */
int ipk_lineedit_set_words(const char *const *words, size_t n);
/* The state-th (0-based) word starting with prefix, in list order, or NULL
 * when there are no more. The pointer stays valid until the next
 * ipk_lineedit_set_words. This is what the TAB key offers. */
const char *ipk_lineedit_match(const char *prefix, int state);
/* 1 when readline (libedit) is available in the process. */
int ipk_lineedit_available(void);
/* Read a line with editing, history and completion. Returns a malloc'd
 * line (caller free()s) or NULL on EOF or when readline is unavailable. */
char *ipk_lineedit_read(const char *prompt);
/* Add a line to the history (no-op without readline). */
void ipk_lineedit_add_history(const char *line);

#endif
