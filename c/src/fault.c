/* The fault build's site counters (see fault.h).  A normal build compiles
 * only the site list's names, for nobody: the API exists in the fault
 * build alone. */
#include "fault.h"

#ifdef PS_FAULT_INJECTION

typedef struct {
  long hits;  /* uses since the last reset */
  long fired; /* uses made to fail */
  long nth;   /* the use (counted from hits 0) to fail, or 0 */
  int error;
} ps__fault_site_t;

static ps__fault_site_t ps__fault_table[PS__SITE_COUNT];

static const char* const ps__fault_names[PS__SITE_COUNT] = {
#define PS__FAULT_NAME(name, error) #name,
    PS__FAULT_SITES(PS__FAULT_NAME)
#undef PS__FAULT_NAME
};

static const int ps__fault_errors[PS__SITE_COUNT] = {
#define PS__FAULT_ERROR(name, error) error,
    PS__FAULT_SITES(PS__FAULT_ERROR)
#undef PS__FAULT_ERROR
};

static int ps__fault_valid(int site) {
  return site >= 0 && site < PS__SITE_COUNT;
}

int ps_fault_sites(void) {
  return PS__SITE_COUNT;
}

const char* ps_fault_site_name(int site) {
  return ps__fault_valid(site) ? ps__fault_names[site] : NULL;
}

int ps_fault_site_error(int site) {
  return ps__fault_valid(site) ? ps__fault_errors[site] : UV_EINVAL;
}

/* Tests arm and read the table between passes, in the thread that runs
 * the loop; the atomics only keep a second loop's thread from tearing a
 * count. */
int ps_fault_set(int site, long nth, int error) {
  ps__fault_site_t* f;
  if (!ps__fault_valid(site) || nth < 0 || error >= 0)
    return UV_EINVAL;
  f = &ps__fault_table[site];
  __atomic_store_n(&f->error, error, __ATOMIC_RELAXED);
  __atomic_store_n(
      &f->nth, nth == 0 ? 0 : __atomic_load_n(&f->hits, __ATOMIC_RELAXED) + nth,
      __ATOMIC_RELAXED);
  return 0;
}

long ps_fault_hits(int site) {
  if (!ps__fault_valid(site))
    return UV_EINVAL;
  return __atomic_load_n(&ps__fault_table[site].hits, __ATOMIC_RELAXED);
}

long ps_fault_fired(int site) {
  if (!ps__fault_valid(site))
    return UV_EINVAL;
  return __atomic_load_n(&ps__fault_table[site].fired, __ATOMIC_RELAXED);
}

void ps_fault_reset(void) {
  int i;
  for (i = 0; i < PS__SITE_COUNT; i++) {
    ps__fault_site_t* f = &ps__fault_table[i];
    __atomic_store_n(&f->nth, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->hits, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->fired, 0, __ATOMIC_RELAXED);
  }
}

int ps__fault_check(int site) {
  ps__fault_site_t* f = &ps__fault_table[site];
  long hit = __atomic_add_fetch(&f->hits, 1, __ATOMIC_RELAXED);
  long nth = __atomic_load_n(&f->nth, __ATOMIC_RELAXED);
  if (nth == 0 || hit != nth)
    return 0;
  __atomic_store_n(&f->nth, 0, __ATOMIC_RELAXED);
  __atomic_add_fetch(&f->fired, 1, __ATOMIC_RELAXED);
  return __atomic_load_n(&f->error, __ATOMIC_RELAXED);
}

int ps__fault_sys(int site) {
  int err = ps__fault_check(site);
  if (err == 0)
    return 0;
  errno = -err; /* libuv's codes are minus errno on Unix */
  return 1;
}

long ps__fault_status(int site, long status) {
  int err;
  if (status < 0)
    return status;
  err = ps__fault_check(site);
  return err != 0 ? err : status;
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int ps__fault_unused_t;

#endif /* PS_FAULT_INJECTION */
