-- FFI declarations for bindings/host/lineedit.h: functions of the ipkrun
-- host itself, not of libipk (reach them through ipk.core's `host`, which is
-- nil outside ipkrun). Kept in sync by hand; the header is the contract.
return [[
int ipk_lineedit_set_words(const char *const *words, size_t n);
const char *ipk_lineedit_match(const char *prefix, int state);
int ipk_lineedit_available(void);
char *ipk_lineedit_read(const char *prompt);
void ipk_lineedit_add_history(const char *line);
]]
