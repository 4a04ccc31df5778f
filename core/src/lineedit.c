/* lineedit.c - REPL line editing through libedit's readline interface,
 * found with dlsym (see ipk/lineedit.h). */
#include "ipk/lineedit.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static char **words;
static size_t nwords;

int ipk_lineedit_set_words(const char *const *w, size_t n) {
  char **nw = calloc(n ? n : 1, sizeof *nw);
  if (!nw) return IPK_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    nw[i] = strdup(w[i]);
    if (!nw[i]) {
      for (size_t j = 0; j < i; j++) free(nw[j]);
      free(nw);
      return IPK_ENOMEM;
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

/* The readline interface, resolved once. */
typedef char *(*readline_fn)(const char *);
typedef int (*add_history_fn)(const char *);
typedef char *(*generator_fn)(const char *, int);
typedef char **(*completion_matches_fn)(const char *, generator_fn);
typedef char **(*attempted_fn)(const char *, int, int);

static struct {
  int tried, ok;
  readline_fn readline;
  add_history_fn add_history;
  completion_matches_fn completion_matches;
} rl;

/* readline's generator protocol: called with state 0, 1, ... until NULL;
 * each match is malloc'd (readline frees it). */
static char *generator(const char *text, int state) {
  const char *m = ipk_lineedit_match(text, state);
  return m ? strdup(m) : NULL;
}

static int *append_char;   /* rl_completion_append_character, if exported */

static char **attempted(const char *text, int start, int end) {
  (void)start;
  (void)end;
  /* "ipk.cron.parse(" should not get a space appended. */
  if (append_char) *append_char = 0;
  return rl.completion_matches(text, generator);
}

static int load(void) {
  if (rl.tried) return rl.ok;
  rl.tried = 1;
  /* In the process already (linked), else libedit's runtime library. */
  void *h = RTLD_DEFAULT;
  if (!dlsym(h, "rl_completion_matches")) {
    h = dlopen("libedit.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (!h) return 0;
  }
  rl.readline = (readline_fn)dlsym(h, "readline");
  rl.add_history = (add_history_fn)dlsym(h, "add_history");
  rl.completion_matches = (completion_matches_fn)dlsym(h, "rl_completion_matches");
  attempted_fn *att = (attempted_fn *)dlsym(h, "rl_attempted_completion_function");
  /* '.' and ':' are part of a word, so "ipk.dataset.sp<TAB>" completes as one. */
  const char **breaks = (const char **)dlsym(h, "rl_basic_word_break_characters");
  append_char = (int *)dlsym(h, "rl_completion_append_character");
  if (!rl.readline || !rl.add_history || !rl.completion_matches || !att) return 0;
  *att = attempted;
  if (breaks) *breaks = " \t\n\"\\'`@$><=;|&{(,[+-*/%^~#";
  rl.ok = 1;
  return 1;
}

int ipk_lineedit_available(void) { return load(); }

char *ipk_lineedit_read(const char *prompt) {
  if (!load()) return NULL;
  return rl.readline(prompt);
}

void ipk_lineedit_add_history(const char *line) {
  if (load() && line && *line) rl.add_history(line);
}
