-- FFI declarations for bindings/host/lineedit.h, sig.h, memcap.h and preempt.h:
-- functions of the ipkrun host itself, not of libipk (reach them through
-- ipk.core's `host` / ipk.host, which know they are absent outside ipkrun).
-- Kept in sync by hand; the headers are the contract.
return [[
int ipk_lineedit_set_words(const char *const *words, size_t n);
const char *ipk_lineedit_match(const char *prefix, int state);
int ipk_lineedit_available(void);
char *ipk_lineedit_read(const char *prompt);
void ipk_lineedit_add_history(const char *line);

int ipk_sig_watch(int signo);
int ipk_sig_count(int signo);
void ipk_sig_reset(int signo);
int ipk_sig_unwatch(int signo);

int ipk_memcap_parse(const char *s, uint64_t *bytes);
uint64_t ipk_memcap_default(void);
int ipk_memcap_set(uint64_t bytes);
uint64_t ipk_memcap_get(void);
uint64_t ipk_memcap_lua_bytes(void);
uint64_t ipk_memcap_lua_peak(void);
uint64_t ipk_memcap_refused(void);
void ipk_memcap_in_step(int on);

volatile int32_t *ipk_preempt_flag(void);
int32_t ipk_preempt_pending(void);
int ipk_preempt_deadline(uint64_t ns);
void ipk_preempt_raise(void);
]]
