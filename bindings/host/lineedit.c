/* lineedit.c - REPL line editing through libedit's readline interface,
 * linked into ipkrun (see lineedit.h). */
#include "lineedit.h"

#include <editline/readline.h>
#include <stdlib.h>
#include <string.h>

static char **words;
static size_t nwords;

int ipk_lineedit_set_words(const char *const *w, size_t n) {
  char **nw = calloc(n ? n : 1, sizeof *nw);
  if (!nw) return -1;
  for (size_t i = 0; i < n; i++) {
    nw[i] = strdup(w[i]);
    if (!nw[i]) {
      for (size_t j = 0; j < i; j++) free(nw[j]);
      free(nw);
      return -1;
    }
  }
  for (size_t i = 0; i < nwords; i++) free(words[i]);
  free(words);
  words = nw;
  nwords = n;
  return 0;
}

const char *ipk_lineedit_match(const char *prefix, int state) {
  size_t plen = prefix ? strlen(prefix) : 0;
  int seen = 0;
  for (size_t i = 0; i < nwords; i++) {
    if (plen == 0 || strncmp(words[i], prefix, plen) == 0) {
      if (seen == state) return words[i];
      seen++;
    }
  }
  return NULL;
}

/* readline's generator protocol: called with state 0, 1, ... until NULL;
 * each match is malloc'd (readline frees it). */
static char *generator(const char *text, int state) {
  const char *m = ipk_lineedit_match(text, state);
  return m ? strdup(m) : NULL;
}

static char **attempted(const char *text, int start, int end) {
  (void)start;
  (void)end;
  /* "ipk.cron.parse(" should not get a space appended. */
  rl_completion_append_character = 0;
  return rl_completion_matches(text, generator);
}

static int ready;

int ipk_lineedit_available(void) {
  if (!ready) {
    rl_attempted_completion_function = attempted;
    /* '.' and ':' are part of a word, so "ipk.dataset.sp<TAB>" completes as one. */
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,[+-*/%^~#";
    ready = 1;
  }
  return 1;
}

char *ipk_lineedit_read(const char *prompt) {
  ipk_lineedit_available();
  return readline(prompt);
}

void ipk_lineedit_add_history(const char *line) {
  if (line && *line) add_history(line);
}
