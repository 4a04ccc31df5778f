-- The few libc functions the Lua layer calls directly (POSIX; Linux ABI).
-- Everything else the OS must do goes through ipk's own modules (ipk.fs);
-- these are the only libc declarations in the Lua code (spec/layout_spec.lua).
return [[
int getpid(void);
int kill(int pid, int sig);
int isatty(int fd);
int fsync(int fd);
typedef struct { long tv_sec; long tv_nsec; } libc_timespec_t;
int clock_gettime(int clk, libc_timespec_t *ts);
enum { LIBC_CLOCK_REALTIME = 0, LIBC_EPERM = 1 };
]]
