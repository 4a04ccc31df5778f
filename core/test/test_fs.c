/* test_fs.c - walks, mkdir -p, temp dirs, rm -rf, tree copies, fingerprints. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipk/err.h"
#include "ipk/fs.h"

static char root[256];

static int setup(void **state) {
  (void)state;
  const char *t = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/ipk-test-fs-XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return ipk_fs_rm_rf(root, NULL);
}

static void path_of(char *out, size_t cap, const char *rel) { snprintf(out, cap, "%s/%s", root, rel); }

static void write_file(const char *rel, const char *data) {
  char p[512];
  path_of(p, sizeof p, rel);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
}

static int exists(const char *rel) {
  char p[512];
  struct stat st;
  path_of(p, sizeof p, rel);
  return lstat(p, &st) == 0;
}

static void test_mkdir_p(void **state) {
  (void)state;
  char p[512];
  ipk_errbuf_t eb;
  path_of(p, sizeof p, "m/a/b/c/");
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, &eb), 0);
  assert_true(exists("m/a/b/c"));
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, &eb), 0); /* existing: fine */
  write_file("m/file", "x");
  path_of(p, sizeof p, "m/file/sub");
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, &eb), IPK_EEXIST);
  assert_non_null(strstr(eb.msg, "m/file"));
  assert_int_equal(ipk_fs_mkdir_p("", 0755, &eb), IPK_EINVAL);
}

static void test_walk_sorted_typed_no_follow(void **state) {
  (void)state;
  char p[512], t[512];
  path_of(p, sizeof p, "w/sub/deeper");
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, NULL), 0);
  write_file("w/b.txt", "hello");
  write_file("w/a.txt", "");
  write_file("w/sub/z", "12");
  write_file("w/sub/deeper/q", "123");
  /* a link to a directory outside: listed as a link, never entered */
  path_of(t, sizeof t, "m");
  assert_int_equal(ipk_fs_mkdir_p(t, 0755, NULL), 0);
  path_of(p, sizeof p, "w/link");
  assert_int_equal(symlink(t, p), 0);

  ipk_fs_list_t l;
  path_of(p, sizeof p, "w");
  assert_int_equal(ipk_fs_walk(p, 0, 0, &l, NULL), 0);
  const char *want[] = { "a.txt", "b.txt", "link", "sub", "sub/deeper", "sub/deeper/q", "sub/z" };
  const int types[] = { IPK_FS_FILE, IPK_FS_FILE, IPK_FS_LINK, IPK_FS_DIR, IPK_FS_DIR, IPK_FS_FILE, IPK_FS_FILE };
  const uint64_t sizes[] = { 0, 5, 0, 0, 0, 3, 2 };
  assert_int_equal(l.count, 7);
  for (size_t i = 0; i < l.count; i++) {
    assert_string_equal(l.items[i].path, want[i]);
    assert_int_equal(l.items[i].type, types[i]);
    if (types[i] != IPK_FS_LINK) assert_int_equal(l.items[i].size, sizes[i]);
    assert_true(l.items[i].mtime_ns > 0);
    assert_true(l.items[i].ino > 0);
  }
  ipk_fs_list_free(&l);

  /* depth 1: direct children only */
  assert_int_equal(ipk_fs_walk(p, 1, 0, &l, NULL), 0);
  assert_int_equal(l.count, 4);
  assert_string_equal(l.items[3].path, "sub");
  ipk_fs_list_free(&l);

  /* following links enters the linked directory (which holds a.., file) */
  assert_int_equal(ipk_fs_walk(p, 1, IPK_FS_FOLLOW, &l, NULL), 0);
  assert_int_equal(l.items[2].type, IPK_FS_DIR);
  ipk_fs_list_free(&l);

  ipk_errbuf_t eb;
  path_of(p, sizeof p, "w/a.txt");
  assert_int_equal(ipk_fs_walk(p, 0, 0, &l, &eb), IPK_EINVAL);
  assert_int_equal(l.count, 0);
  path_of(p, sizeof p, "nope");
  assert_int_equal(ipk_fs_walk(p, 0, 0, &l, &eb), IPK_ENOENT);
  assert_non_null(strstr(eb.msg, "nope"));
}

static void test_stat(void **state) {
  (void)state;
  char p[512];
  ipk_fs_entry_t e;
  write_file("s.bin", "abcdef");
  path_of(p, sizeof p, "s.bin");
  assert_int_equal(ipk_fs_stat(p, 0, &e, NULL), 0);
  assert_int_equal(e.type, IPK_FS_FILE);
  assert_int_equal(e.size, 6);
  assert_string_equal(e.path, "");
  assert_int_equal(ipk_fs_stat(root, 0, &e, NULL), 0);
  assert_int_equal(e.type, IPK_FS_DIR);
  path_of(p, sizeof p, "missing");
  assert_int_equal(ipk_fs_stat(p, 0, &e, NULL), IPK_ENOENT);
}

static void test_mkdtemp(void **state) {
  (void)state;
  char dir[512], a[512], b[512];
  path_of(dir, sizeof dir, "staging/new");
  assert_int_equal(ipk_fs_mkdtemp(dir, "ds.", a, sizeof a, NULL), 0);
  assert_int_equal(ipk_fs_mkdtemp(dir, "ds.", b, sizeof b, NULL), 0);
  assert_string_not_equal(a, b);
  assert_int_equal(strncmp(a, dir, strlen(dir)), 0);
  assert_non_null(strstr(a, "/ds."));
  struct stat st;
  assert_int_equal(stat(a, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  char small[8];
  assert_int_equal(ipk_fs_mkdtemp(dir, "ds.", small, sizeof small, NULL), IPK_ERANGE);
  assert_int_equal(ipk_fs_mkdtemp(dir, "a/b", a, sizeof a, NULL), IPK_EINVAL);
}

static void test_rm_rf_keeps_link_targets(void **state) {
  (void)state;
  char p[512], t[512];
  path_of(p, sizeof p, "r/a/b");
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, NULL), 0);
  write_file("r/a/b/f", "x");
  write_file("r/g", "y");
  path_of(t, sizeof t, "keep");
  assert_int_equal(ipk_fs_mkdir_p(t, 0755, NULL), 0);
  write_file("keep/precious", "z");
  path_of(p, sizeof p, "r/a/tolink");
  assert_int_equal(symlink(t, p), 0);
  path_of(p, sizeof p, "r");
  assert_int_equal(ipk_fs_rm_rf(p, NULL), 0);
  assert_false(exists("r"));
  assert_true(exists("keep/precious")); /* the link went, its target stayed */
  assert_int_equal(ipk_fs_rm_rf(p, NULL), 0); /* missing: fine */
  /* a symlink given as the root is removed, not followed */
  path_of(p, sizeof p, "rootlink");
  assert_int_equal(symlink(t, p), 0);
  assert_int_equal(ipk_fs_rm_rf(p, NULL), 0);
  assert_false(exists("rootlink"));
  assert_true(exists("keep/precious"));
  assert_int_equal(ipk_fs_rm_rf("/", NULL), IPK_EUNSAFE);
  assert_int_equal(ipk_fs_rm_rf("", NULL), IPK_EINVAL);
}

static void test_copy_tree_links_or_copies(void **state) {
  (void)state;
  char s[512], d[512], p[512];
  path_of(s, sizeof s, "c/src/inner");
  assert_int_equal(ipk_fs_mkdir_p(s, 0755, NULL), 0);
  write_file("c/src/one", "1111");
  write_file("c/src/inner/two", "22");
  path_of(p, sizeof p, "c/src/ln");
  assert_int_equal(symlink("one", p), 0);
  path_of(s, sizeof s, "c/src");
  path_of(d, sizeof d, "c/linked");
  size_t linked = 99;
  assert_int_equal(ipk_fs_copy_tree(s, d, 0, &linked, NULL), 0);
  assert_int_equal(linked, 2); /* same file system: both files hard-linked */
  struct stat a, b;
  path_of(p, sizeof p, "c/src/one");
  assert_int_equal(stat(p, &a), 0);
  path_of(p, sizeof p, "c/linked/one");
  assert_int_equal(stat(p, &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  char target[64] = { 0 };
  path_of(p, sizeof p, "c/linked/ln");
  assert_int_equal(readlink(p, target, sizeof target - 1), 3);
  assert_string_equal(target, "one");

  path_of(d, sizeof d, "c/copied");
  assert_int_equal(ipk_fs_copy_tree(s, d, IPK_FS_COPY_ONLY, &linked, NULL), 0);
  assert_int_equal(linked, 0);
  path_of(p, sizeof p, "c/copied/inner/two");
  assert_int_equal(stat(p, &b), 0);
  assert_int_equal(b.st_size, 2);
  path_of(p, sizeof p, "c/src/inner/two");
  assert_int_equal(stat(p, &a), 0);
  assert_int_not_equal(a.st_ino, b.st_ino);

  /* a single file, and an existing destination */
  path_of(s, sizeof s, "c/src/one");
  path_of(d, sizeof d, "c/single");
  assert_int_equal(ipk_fs_copy_tree(s, d, 0, NULL, NULL), 0);
  assert_true(exists("c/single"));
  ipk_errbuf_t eb;
  assert_int_equal(ipk_fs_copy_tree(s, d, 0, NULL, &eb), IPK_EEXIST);
  path_of(s, sizeof s, "c/none");
  path_of(d, sizeof d, "c/none2");
  assert_int_equal(ipk_fs_copy_tree(s, d, 0, NULL, &eb), IPK_ENOENT);
}

static void test_fingerprint_sees_every_change(void **state) {
  (void)state;
  char p[512], q[512];
  path_of(p, sizeof p, "f/d");
  assert_int_equal(ipk_fs_mkdir_p(p, 0755, NULL), 0);
  write_file("f/d/x", "abc");
  path_of(p, sizeof p, "f");
  uint8_t a[IPK_FS_FINGERPRINT_SIZE], b[IPK_FS_FINGERPRINT_SIZE];
  assert_int_equal(ipk_fs_fingerprint(p, 0, a, NULL), 0);
  assert_int_equal(ipk_fs_fingerprint(p, 0, b, NULL), 0);
  assert_memory_equal(a, b, sizeof a); /* stable */

  /* mtime only */
  path_of(q, sizeof q, "f/d/x");
  struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
  assert_int_equal(utimensat(AT_FDCWD, q, ts, 0), 0);
  assert_int_equal(ipk_fs_fingerprint(p, 0, b, NULL), 0);
  assert_memory_not_equal(a, b, sizeof a);
  memcpy(a, b, sizeof a);

  /* same name, size and mtime, new inode (replaced by a copy); the
   * directory's mtime is put back so only the inode differs */
  char q2[512], dd[512];
  path_of(dd, sizeof dd, "f/d");
  struct timespec dts[2] = { { 2000, 0 }, { 2000, 0 } };
  assert_int_equal(utimensat(AT_FDCWD, dd, dts, 0), 0);
  assert_int_equal(ipk_fs_fingerprint(p, 0, a, NULL), 0);
  path_of(q2, sizeof q2, "f/d/x.new");
  write_file("f/d/x.new", "xyz");
  assert_int_equal(utimensat(AT_FDCWD, q2, ts, 0), 0);
  assert_int_equal(rename(q2, q), 0);
  assert_int_equal(utimensat(AT_FDCWD, dd, dts, 0), 0);
  assert_int_equal(ipk_fs_fingerprint(p, 0, b, NULL), 0);
  assert_memory_not_equal(a, b, sizeof a);

  /* a new file changes it */
  memcpy(a, b, sizeof a);
  write_file("f/d/y", "");
  assert_int_equal(utimensat(AT_FDCWD, dd, dts, 0), 0);
  assert_int_equal(ipk_fs_fingerprint(p, 0, b, NULL), 0);
  assert_memory_not_equal(a, b, sizeof a);

  /* a single file works; a missing path is ENOENT */
  assert_int_equal(ipk_fs_fingerprint(q, 0, a, NULL), 0);
  assert_int_equal(ipk_fs_fingerprint(q, 0, b, NULL), 0);
  assert_memory_equal(a, b, sizeof b);
  path_of(q, sizeof q, "f/missing");
  assert_int_equal(ipk_fs_fingerprint(q, 0, b, NULL), IPK_ENOENT);
}

static void test_create(void **state) {
  (void)state;
  char p[512];
  int fd = -1;
  path_of(p, sizeof p, "new.txt");
  assert_int_equal(ipk_fs_create(p, 0, 0644, &fd, NULL), 0);
  assert_int_equal(write(fd, "abc", 3), 3);
  assert_int_equal(ipk_fs_close(fd, NULL), 0);
  assert_int_equal(ipk_fs_create(p, 0, 0644, &fd, NULL), 0); /* truncates */
  assert_int_equal(ipk_fs_close(fd, NULL), 0);
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, 0);
  assert_int_equal(ipk_fs_create(p, IPK_FS_EXCL, 0644, &fd, NULL), IPK_EEXIST);
  assert_true(fcntl(0, F_GETFD) >= 0);
  path_of(p, sizeof p, "nodir/new.txt");
  assert_int_equal(ipk_fs_create(p, 0, 0644, &fd, NULL), IPK_ENOENT);
  assert_int_equal(ipk_fs_close(-1, NULL), IPK_EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mkdir_p),
    cmocka_unit_test(test_walk_sorted_typed_no_follow),
    cmocka_unit_test(test_stat),
    cmocka_unit_test(test_mkdtemp),
    cmocka_unit_test(test_rm_rf_keeps_link_targets),
    cmocka_unit_test(test_copy_tree_links_or_copies),
    cmocka_unit_test(test_fingerprint_sees_every_change),
    cmocka_unit_test(test_create),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
