// Kernel events on the event loop: an eventfd watched by a libuv poll handle on the environment's
// loop (no thread, no polling), whose signals call a JS function; and the VFIO request notifier
// routed to such an eventfd. The kernel calls are in ioctl/notify.{h,cc}.
//
//   notifierOpen(callback(count)) -> id       an eventfd + poll handle (unref'd: it never keeps
//                                             the process alive)
//   notifierClose(id)                         idempotent; unknown ids are a RangeError
//   deviceSetReqTrigger(device, id | 0)       VFIO_DEVICE_SET_IRQS on VFIO_PCI_REQ_IRQ_INDEX; 0 clears
//   deviceReqIrqCount(device)                 VFIO_DEVICE_GET_IRQ_INFO count of that index
//
// The callback runs as a libuv callback (napi_make_callback: microtasks run after it, an exception
// becomes an uncaughtException). Every notifier still open when the environment goes away is
// closed by its cleanup hook.
#include <uv.h>

#include <map>
#include <memory>

#include "../ioctl/notify.h"
#include "../ioctl/sys.h"
#include "addon.h"
#include "args.h"
#include "errors.h"

namespace dmaiommu::binding {
namespace {

struct Notifier;

struct Registry {
  napi_env env = nullptr;
  uint32_t next_id = 1;
  std::map<uint32_t, Notifier*> live;
  bool torn_down = false;
};

// Owned by the poll handle once it is started: freed in uv_close's callback.
struct Notifier {
  uv_poll_t poll;
  int fd = -1;
  uint32_t id = 0;
  Registry* registry = nullptr;  // null once closed (a late readiness callback does nothing)
  Napi::FunctionReference callback;
};

void OnClosed(uv_handle_t* h) {
  auto* n = static_cast<Notifier*>(h->data);
  if (n->fd >= 0) sys::close_fd(n->fd);
  delete n;
}

void CloseNotifier(Notifier* n) {
  if (n->registry) n->registry->live.erase(n->id);
  n->registry = nullptr;
  n->callback.Reset();
  uv_poll_stop(&n->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&n->poll), OnClosed);
}

void OnReadable(uv_poll_t* h, int status, int events) {
  auto* n = static_cast<Notifier*>(h->data);
  Registry* reg = n->registry;
  if (!reg || reg->torn_down) return;
  uint64_t count = 0;
  int r = notify::eventfd_drain(n->fd, &count);
  if (r == 0) return;  // spurious wake-up
  Napi::Env env(reg->env);
  Napi::HandleScope scope(env);
  double arg = r > 0 ? static_cast<double>(count) : static_cast<double>(r);  // < 0: -errno of the read
  try {
    n->callback.MakeCallback(env.Global(), {Napi::Number::New(env, arg)});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

Registry* RegistryOf(const Napi::CallbackInfo& info) { return static_cast<Registry*>(info.Data()); }

Notifier* ArgNotifier(const Napi::CallbackInfo& info, size_t i) {
  uint32_t id = ArgU32(info, i, "notifier");
  auto it = RegistryOf(info)->live.find(id);
  if (it == RegistryOf(info)->live.end()) ThrowRangeError(info.Env(), "notifier " + std::to_string(id) + " is not open");
  return it->second;
}

Napi::Value NotifierOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Registry* reg = RegistryOf(info);
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowTypeError(env, "callback must be a function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) ThrowErrno(env, -ENOSYS, "uv_poll_init", "no event loop");
  int fd = Check(env, notify::eventfd_create(), "eventfd");
  auto* n = new Notifier();
  n->fd = fd;
  n->poll.data = n;
  int r = uv_poll_init(loop, &n->poll, fd);
  if (r < 0) {
    sys::close_fd(fd);
    delete n;
    ThrowErrno(env, r, "uv_poll_init");
  }
  r = uv_poll_start(&n->poll, UV_READABLE, OnReadable);
  if (r < 0) {
    n->registry = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&n->poll), OnClosed);
    ThrowErrno(env, r, "uv_poll_start");
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&n->poll));
  n->callback = Napi::Persistent(info[0].As<Napi::Function>());
  n->id = reg->next_id++;
  n->registry = reg;
  reg->live[n->id] = n;
  return Napi::Number::New(env, n->id);
}

Napi::Value NotifierClose(const Napi::CallbackInfo& info) {
  uint32_t id = ArgU32(info, 0, "notifier");
  auto it = RegistryOf(info)->live.find(id);
  if (it != RegistryOf(info)->live.end()) CloseNotifier(it->second);
  else if (id == 0 || id >= RegistryOf(info)->next_id) ThrowRangeError(info.Env(), "notifier " + std::to_string(id) + " was never opened");
  return info.Env().Undefined();
}

Napi::Value DeviceSetReqTrigger(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleState& d = ArgOpenHandle(info, 0, "device");
  int fd = -1;
  if (ArgU32(info, 1, "notifier") != 0) fd = ArgNotifier(info, 1)->fd;
  Check(env, notify::device_set_req_trigger(d.fd, fd), "VFIO_DEVICE_SET_IRQS", "request notifier (VFIO_PCI_REQ_IRQ_INDEX)");
  return env.Undefined();
}

Napi::Value DeviceReqIrqCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HandleState& d = ArgOpenHandle(info, 0, "device");
  int n = Check(env, notify::device_irq_count(d.fd, notify::kVfioPciReqIrqIndex), "VFIO_DEVICE_GET_IRQ_INFO");
  return Napi::Number::New(env, n);
}

}  // namespace

void RegisterNotify(Napi::Env env, Napi::Object exports) {
  auto* reg = new Registry();
  reg->env = env;
  SetFunctions(env, exports,
               {
                   {"notifierOpen", NotifierOpen},
                   {"notifierClose", NotifierClose},
                   {"deviceSetReqTrigger", DeviceSetReqTrigger},
                   {"deviceReqIrqCount", DeviceReqIrqCount},
               }, reg);
  env.AddCleanupHook([reg]() {
    reg->torn_down = true;
    while (!reg->live.empty()) CloseNotifier(reg->live.begin()->second);
    delete reg;  // closed notifiers no longer point at it
  });
}

}  // namespace dmaiommu::binding
