/*
 * @ztwim/peercred: the kernel's view of the process on the other end of a Unix domain socket.
 *
 * Exports (N-API, plain C):
 *   getPeerCred(fd: number) -> { pid: number, uid: number, gid: number }   (SO_PEERCRED)
 *   getPeerGroups(fd: number) -> number[]                                 (SO_PEERGROUPS, else [])
 *   acceptPending(fd: number, max: number) -> number[]                    (accept4 until EAGAIN or max)
 *   trimHeap() -> boolean                                                 (glibc malloc_trim(0); false elsewhere)
 *   platform: string                                                      ("linux" or "unsupported")
 *
 * trimHeap sits here because this is the project's one native addon: glibc keeps the memory that
 * native code (nghttp2 sessions, TLS and socket buffers) freed after a burst of connections in its
 * arenas, and only malloc_trim hands it back to the kernel; Node has no call for it. A daemon over
 * its memory budget calls it after a full GC (packages/cli/src/daemon-tuning.ts).
 *
 * acceptPending exists because libuv (Node 20) accepts one connection per event-loop turn: on a
 * busy process a burst of clients waits in the listen queue for as many turns as there are
 * clients. It takes the rest of the queue at once (non-blocking, close-on-exec sockets), for the
 * caller to wrap as sockets; it stops quietly at the first error (EAGAIN: queue empty; EMFILE:
 * libuv's own accept path deals with it) and returns what it took.
 *
 * Both functions throw a JS Error whose message carries strerror(errno) and whose `code` is the
 * errno name (e.g. "EBADF", "ENOTSOCK") when the kernel refuses the request.
 */
#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <node_api.h>

#define CHECK_NAPI(env, call)                                                  \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error((env), "ERR_PEERCRED_NAPI", "peercred: n-api call failed: " #call); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EINVAL: return "EINVAL";
    case ENOTCONN: return "ENOTCONN";
    case ERANGE: return "ERANGE";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case ENOTSUP: return "ENOTSUP";
    default: return "EUNKNOWN";
  }
}

/* Throws Error(message) with .code = errno name and .errno = err. Returns NULL for convenience. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "peercred: %s: %s", what, strerror(err));
  napi_value js_msg, js_code, js_errno, error;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok ||
      napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_int32(env, err, &js_errno) != napi_ok ||
      napi_create_error(env, js_code, js_msg, &error) != napi_ok ||
      napi_set_named_property(env, error, "errno", js_errno) != napi_ok) {
    napi_throw_error(env, errno_name(err), msg);
    return NULL;
  }
  napi_throw(env, error);
  return NULL;
}

/* Reads the single fd argument; throws a TypeError and returns -1 on bad input. */
static int fd_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "ERR_PEERCRED_NAPI", "peercred: cannot read arguments");
    return -1;
  }
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "peercred: fd argument is required");
    return -1;
  }
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "peercred: fd must be a number");
    return -1;
  }
  double d;
  if (napi_get_value_double(env, argv[0], &d) != napi_ok || d != d || d < 0 || d > 2147483647.0 ||
      (double)(int32_t)d != d) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "peercred: fd must be a non-negative integer");
    return -1;
  }
  return (int)d;
}

static napi_status set_uint(napi_env env, napi_value obj, const char *name, uint32_t v) {
  napi_value n;
  napi_status st = napi_create_uint32(env, v, &n);
  if (st != napi_ok) return st;
  return napi_set_named_property(env, obj, name, n);
}

static napi_value get_peer_cred(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
#if defined(__linux__) && defined(SO_PEERCRED)
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  }
  if (len != sizeof cred) {
    return throw_errno(env, "getsockopt(SO_PEERCRED) returned a short struct", EINVAL);
  }
  if (cred.pid <= 0) {
    /* The kernel could not name the peer (e.g. it lives in a pid namespace we cannot see). */
    return throw_errno(env, "getsockopt(SO_PEERCRED) reported no peer pid", ENOTCONN);
  }
  napi_value obj;
  CHECK_NAPI(env, napi_create_object(env, &obj));
  CHECK_NAPI(env, set_uint(env, obj, "pid", (uint32_t)cred.pid));
  CHECK_NAPI(env, set_uint(env, obj, "uid", (uint32_t)cred.uid));
  CHECK_NAPI(env, set_uint(env, obj, "gid", (uint32_t)cred.gid));
  return obj;
#else
  (void)fd;
  return throw_errno(env, "SO_PEERCRED is not supported on this platform", ENOTSUP);
#endif
}

static napi_value get_peer_groups(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
  napi_value arr;
#if defined(__linux__) && defined(SO_PEERGROUPS)
  socklen_t cap = 64 * (socklen_t)sizeof(gid_t);
  gid_t *groups = NULL;
  for (int attempt = 0; attempt < 4; attempt++) {
    gid_t *grown = realloc(groups, cap == 0 ? sizeof(gid_t) : cap);
    if (grown == NULL) {
      free(groups);
      return throw_errno(env, "getsockopt(SO_PEERGROUPS)", ENOMEM);
    }
    groups = grown;
    socklen_t len = cap;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
      size_t n = (size_t)len / sizeof(gid_t);
      if (napi_create_array_with_length(env, n, &arr) != napi_ok) {
        free(groups);
        napi_throw_error(env, "ERR_PEERCRED_NAPI", "peercred: cannot create array");
        return NULL;
      }
      for (size_t i = 0; i < n; i++) {
        napi_value v;
        if (napi_create_uint32(env, (uint32_t)groups[i], &v) != napi_ok ||
            napi_set_element(env, arr, (uint32_t)i, v) != napi_ok) {
          free(groups);
          napi_throw_error(env, "ERR_PEERCRED_NAPI", "peercred: cannot fill array");
          return NULL;
        }
      }
      free(groups);
      return arr;
    }
    int err = errno;
    if (err != ERANGE || len <= cap) {
      free(groups);
      return throw_errno(env, "getsockopt(SO_PEERGROUPS)", err);
    }
    cap = len; /* the kernel told us how much room it needs */
  }
  free(groups);
  return throw_errno(env, "getsockopt(SO_PEERGROUPS)", ERANGE);
#else
  (void)fd;
  CHECK_NAPI(env, napi_create_array_with_length(env, 0, &arr));
  return arr;
#endif
}

static napi_value accept_pending(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "ERR_PEERCRED_NAPI", "peercred: cannot read arguments");
    return NULL;
  }
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
  uint32_t max = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[1], &max) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "peercred: max must be a non-negative integer");
    return NULL;
  }
  napi_value arr;
  CHECK_NAPI(env, napi_create_array(env, &arr));
#if defined(__linux__)
  for (uint32_t i = 0; i < max; i++) {
    int c;
    do {
      c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    } while (c < 0 && errno == EINTR);
    if (c < 0) {
      if (errno == ECONNABORTED) continue;
      break;
    }
    napi_value v;
    if (napi_create_int32(env, c, &v) != napi_ok || napi_set_element(env, arr, i, v) != napi_ok) {
      close(c);
      napi_throw_error(env, "ERR_PEERCRED_NAPI", "peercred: cannot fill array");
      return NULL;
    }
  }
#else
  (void)fd;
  (void)max;
#endif
  return arr;
}

static napi_value trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value out;
  CHECK_NAPI(env, napi_get_boolean(env, released != 0, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn_cred, fn_groups, fn_accept, fn_trim, platform;
  CHECK_NAPI(env, napi_create_function(env, "getPeerCred", NAPI_AUTO_LENGTH, get_peer_cred, NULL, &fn_cred));
  CHECK_NAPI(env, napi_create_function(env, "getPeerGroups", NAPI_AUTO_LENGTH, get_peer_groups, NULL, &fn_groups));
  CHECK_NAPI(env, napi_create_function(env, "acceptPending", NAPI_AUTO_LENGTH, accept_pending, NULL, &fn_accept));
  CHECK_NAPI(env, napi_create_function(env, "trimHeap", NAPI_AUTO_LENGTH, trim_heap, NULL, &fn_trim));
#if defined(__linux__) && defined(SO_PEERCRED)
  CHECK_NAPI(env, napi_create_string_utf8(env, "linux", NAPI_AUTO_LENGTH, &platform));
#else
  CHECK_NAPI(env, napi_create_string_utf8(env, "unsupported", NAPI_AUTO_LENGTH, &platform));
#endif
  CHECK_NAPI(env, napi_set_named_property(env, exports, "getPeerCred", fn_cred));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "getPeerGroups", fn_groups));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "acceptPending", fn_accept));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "trimHeap", fn_trim));
  CHECK_NAPI(env, napi_set_named_property(env, exports, "platform", platform));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
