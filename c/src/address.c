/* Socket addresses in the shape Python's socket module reports them. */
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

int ps__address(const struct sockaddr_storage* ss, int len, ps_address_t* out) {
  memset(out, 0, sizeof(*out));
  out->family = ss->ss_family;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* sin = (const struct sockaddr_in*)ss;
    int err = uv_ip4_name(sin, out->host, sizeof(out->host));
    if (err != 0)
      return err;
    out->host_len = strlen(out->host);
    out->port = ntohs(sin->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* sin6 = (const struct sockaddr_in6*)ss;
    int err = uv_ip6_name(sin6, out->host, sizeof(out->host));
    if (err != 0)
      return err;
    out->host_len = strlen(out->host);
    out->port = ntohs(sin6->sin6_port);
    out->flowinfo = ntohl(sin6->sin6_flowinfo);
    out->scope_id = sin6->sin6_scope_id;
  } else if (ss->ss_family == AF_UNIX) {
    const struct sockaddr_un* sun = (const struct sockaddr_un*)ss;
    size_t n = 0;
    if (len > (int)offsetof(struct sockaddr_un, sun_path))
      n = (size_t)len - offsetof(struct sockaddr_un, sun_path);
    if (n > sizeof(sun->sun_path))
      n = sizeof(sun->sun_path);
    /* A path name ends at its NUL; an abstract name starts with one. */
    if (n > 0 && sun->sun_path[0] != '\0')
      n = strnlen(sun->sun_path, n);
    memcpy(out->host, sun->sun_path, n);
    out->host_len = n;
  }
  return 0;
}
