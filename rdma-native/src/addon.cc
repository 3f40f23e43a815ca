// N-API binding for rdma::Fabric. One JS object owns one Fabric; close() stops the
// progress thread and releases every libfabric resource. Completions reach JS in
// batches, in one of three ways:
// - start(cb): a native progress thread queues them and wakes JS through one
//   thread-safe function call per burst. Optionally it keeps reading the CQ for
//   spinUs after each completion before it sleeps in fi_cq_sread again.
// - watch(cb): the event loop itself watches the CQ's wait fd (uv_poll), drains the
//   CQ on the JS thread and calls cb directly: one wake-up per burst instead of two
//   (thread, then JS), and no thread.
// - poll(): JS drains them itself (busy-poll mode).
// Nothing here blocks the event loop: sends are non-blocking and report -FI_EAGAIN,
// and the progress thread waits on its own.
#include <napi.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "fabric.h"

namespace {

using rdma::Event;
using rdma::EventKind;

constexpr size_t kPollMax = 1024;
// Batches waiting for JS before the progress thread stops reading completions
// (which stops re-posting receives, which stops the senders: bounded memory).
constexpr size_t kQueuedBatchesMax = 64;

Napi::Object toJs(Napi::Env env, const Event& ev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", Napi::Number::New(env, static_cast<int32_t>(ev.kind)));
  o.Set("src", Napi::Number::New(env, static_cast<double>(ev.src)));
  o.Set("ctx", Napi::Number::New(env, static_cast<double>(ev.ctx)));
  switch (ev.kind) {
    case EventKind::Recv:
      o.Set("data", Napi::Buffer<uint8_t>::Copy(env, ev.data.data(), ev.data.size()));
      break;
    case EventKind::RemoteData:
      o.Set("cqData", Napi::BigInt::New(env, ev.cqData));
      o.Set("len", Napi::Number::New(env, static_cast<double>(ev.len)));
      break;
    case EventKind::Error:
      o.Set("err", Napi::Number::New(env, ev.err));
      o.Set("message", Napi::String::New(env, ev.message));
      break;
  }
  return o;
}

Napi::Array toJs(Napi::Env env, const std::vector<Event>& events) {
  Napi::Array arr = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) arr.Set(static_cast<uint32_t>(i), toJs(env, events[i]));
  return arr;
}

uint64_t toU64(const Napi::Value& v) {
  bool lossless = true;
  if (v.IsBigInt()) return v.As<Napi::BigInt>().Uint64Value(&lossless);
  return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
}

class FabricWrap : public Napi::ObjectWrap<FabricWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Fabric",
                       {
                           InstanceMethod<&FabricWrap::Info>("info"),
                           InstanceMethod<&FabricWrap::AvInsert>("avInsert"),
                           InstanceMethod<&FabricWrap::AvRemove>("avRemove"),
                           InstanceMethod<&FabricWrap::OpenRing>("openRing"),
                           InstanceMethod<&FabricWrap::CloseRing>("closeRing"),
                           InstanceMethod<&FabricWrap::CopyOut>("copyOut"),
                           InstanceMethod<&FabricWrap::Send>("send"),
                           InstanceMethod<&FabricWrap::WriteData>("writeData"),
                           InstanceMethod<&FabricWrap::Poll>("poll"),
                           InstanceMethod<&FabricWrap::Start>("start"),
                           InstanceMethod<&FabricWrap::Watch>("watch"),
                           InstanceMethod<&FabricWrap::Arm>("arm"),
                           InstanceMethod<&FabricWrap::Close>("close"),
                           InstanceMethod<&FabricWrap::Stats>("stats"),
                       });
  }

  explicit FabricWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FabricWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "options object expected").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    rdma::FabricOptions opts;
    auto str = [&](const char* k) {
      Napi::Value v = o.Get(k);
      return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    };
    auto num = [&](const char* k, uint32_t dflt) {
      Napi::Value v = o.Get(k);
      return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
    };
    opts.provider = str("provider");
    opts.node = str("node");
    opts.service = str("service");
    opts.waitable = o.Get("waitable").ToBoolean().Value();
    opts.waitFd = o.Get("waitFd").ToBoolean().Value();
    if (opts.waitFd) opts.waitable = true;
    if (o.Get("doorbell").IsBoolean()) opts.doorbell = o.Get("doorbell").As<Napi::Boolean>().Value();
    spinUs_ = num("spinUs", 0);
    opts.recvSlots = num("recvSlots", 64);
    opts.recvSlotBytes = num("recvSlotBytes", 65536);
    opts.cqSize = num("cqSize", 4096);
    opts.txSize = num("txSize", 256);
    try {
      fabric_ = std::make_unique<rdma::Fabric>(opts);
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    }
  }

  ~FabricWrap() override {
    Stop();
    CloseWakeFd();
  }

 private:
  bool Usable(Napi::Env env) {
    if (fabric_ && !fabric_->closed()) return true;
    Napi::Error::New(env, "fabric closed").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("provider", fabric_->providerName());
    o.Set("virtAddr", fabric_->virtAddr());
    o.Set("waitable", fabric_->isWaitable());
    o.Set("injectBytes", static_cast<double>(fabric_->injectBytes()));
    std::vector<uint8_t> name;
    try {
      name = fabric_->name();
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    o.Set("name", Napi::Buffer<uint8_t>::Copy(env, name.data(), name.size()));
    return o;
  }

  Napi::Value AvInsert(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!info[0].IsBuffer()) {
      Napi::TypeError::New(env, "address buffer expected").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    std::vector<uint8_t> addr(buf.Data(), buf.Data() + buf.Length());
    try {
      return Napi::Number::New(env, static_cast<double>(fabric_->avInsert(addr)));
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }

  Napi::Value AvRemove(const Napi::CallbackInfo& info) {
    if (fabric_ && info[0].IsNumber()) fabric_->avRemove(info[0].As<Napi::Number>().Int64Value());
    return info.Env().Undefined();
  }

  Napi::Value OpenRing(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    const uint32_t bytes = info[0].As<Napi::Number>().Uint32Value();
    if (bytes == 0) {
      Napi::RangeError::New(env, "ring size must be positive").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint64_t addr = 0, key = 0;
    try {
      const uint32_t id = fabric_->openRing(bytes, &addr, &key);
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", id);
      o.Set("addr", Napi::BigInt::New(env, addr));
      o.Set("key", Napi::BigInt::New(env, key));
      return o;
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }

  Napi::Value CloseRing(const Napi::CallbackInfo& info) {
    bool ok = fabric_ && fabric_->closeRing(info[0].As<Napi::Number>().Uint32Value());
    return Napi::Boolean::New(info.Env(), ok);
  }

  // copyOut(ringId, offset, len) -> Buffer | null (null: out of bounds or unknown ring).
  Napi::Value CopyOut(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!fabric_ || !info[1].IsNumber() || !info[2].IsNumber()) return env.Null();
    const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    const double offset = info[1].As<Napi::Number>().DoubleValue();
    const double len = info[2].As<Napi::Number>().DoubleValue();
    const size_t size = fabric_->ringBytes(id);
    if (!(offset >= 0) || !(len >= 0) || offset > size || len > size - offset) return env.Null();
    auto out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(len));
    if (!fabric_->copyOut(id, static_cast<uint64_t>(offset), static_cast<uint64_t>(len), out.Data())) {
      return env.Null();
    }
    return out;
  }

  // send(dest, buf, ctx) -> 0 | -errno (-FI_EAGAIN: queue full, retry after progress)
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!fabric_ || fabric_->closed()) return Napi::Number::New(env, -FI_EINVAL);
    auto buf = info[1].As<Napi::Uint8Array>();
    int rc = fabric_->send(info[0].As<Napi::Number>().Int64Value(), buf.Data(), buf.ByteLength(),
                           info[2].As<Napi::Number>().Int64Value());
    NoteSend(rc != 0 || buf.ByteLength() > fabric_->injectBytes());
    return Napi::Number::New(env, rc);
  }

  // writeData(dest, buf, raddr, key, cqData, ctx) -> 0 | -errno
  Napi::Value WriteData(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!fabric_ || fabric_->closed()) return Napi::Number::New(env, -FI_EINVAL);
    auto buf = info[1].As<Napi::Uint8Array>();
    int rc = fabric_->writeData(info[0].As<Napi::Number>().Int64Value(), buf.Data(), buf.ByteLength(),
                                toU64(info[2]), toU64(info[3]), toU64(info[4]),
                                info[5].As<Napi::Number>().Int64Value());
    NoteSend(rc != 0 || buf.ByteLength() > fabric_->injectBytes());
    return Napi::Number::New(env, rc);
  }

  Napi::Value Poll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<Event> events;
    if (fabric_ && !running_) fabric_->poll(events, kPollMax);
    return toJs(env, events);
  }

  // watch(cb): the event loop watches the CQ's wait fd; cb(events[]) per drained burst.
  // Returns false when the provider has no wait fd (the caller then uses another mode).
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (running_ || watch_ != nullptr) return Napi::Boolean::New(env, false);
    const int fd = fabric_->waitFd();
    uv_loop_t* loop = nullptr;
    if (fd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      return Napi::Boolean::New(env, false);
    auto* w = new Watcher();
    w->self = this;
    if (uv_poll_init(loop, &w->poll, fd) != 0 || uv_timer_init(loop, &w->timer) != 0) {
      delete w;  // uv_poll_init fails before registering anything; nothing to close
      return Napi::Boolean::New(env, false);
    }
    w->poll.data = w;
    w->timer.data = w;
    watchCb_ = Napi::Persistent(info[0].As<Napi::Function>());
    watchCtx_ = std::make_unique<Napi::AsyncContext>(env, "rdma-completions");
    env_ = env;
    watch_ = w;
    Ref();  // the JS object stays alive while the loop may call into it
    w->armed = true;
    uv_poll_start(&w->poll, UV_READABLE, PollCb);
    // Completions may already be queued (the fd only reports new ones once armed).
    uv_timer_start(&w->timer, [](uv_timer_t* h) { static_cast<Watcher*>(h->data)->self->Drain(); }, 0, 0);
    return Napi::Boolean::New(env, true);
  }

  // arm(on): busy-poll turns the fd watch off while it spins (the fd stays readable
  // then, and each loop turn would pay a trywait for nothing) and on when it parks.
  Napi::Value Arm(const Napi::CallbackInfo& info) {
    Watcher* w = watch_;
    if (w == nullptr) return info.Env().Undefined();
    const bool on = info[0].ToBoolean().Value();
    if (on == w->armed) return info.Env().Undefined();
    w->armed = on;
    if (on) {
      uv_poll_start(&w->poll, UV_READABLE, PollCb);
      uv_timer_start(&w->timer, TimerCb, 0, 0);  // the trywait handshake, then sleep
    } else {
      uv_poll_stop(&w->poll);
      uv_timer_stop(&w->timer);
    }
    return info.Env().Undefined();
  }

  static void PollCb(uv_poll_t* h, int, int) {
    auto* x = static_cast<Watcher*>(h->data);
    x->self->fdWakes_++;
    x->self->Drain();
  }

  // Drains the CQ on the JS thread and re-arms its fd. fi_trywait both says whether
  // blocking is safe and resets the provider's signal, so the fd does not stay readable.
  void Drain() {
    Watcher* w = watch_;
    if (w == nullptr || !w->armed || !fabric_ || fabric_->closed()) return;
    std::vector<Event> events;
    bool armed = false;
    for (int round = 0; round < 8 && events.size() < kPollMax; round++) {
      const size_t want = kPollMax - events.size();
      // A short read drained the CQ; trywait confirms (and resets the signal) without
      // another full progress pass.
      if (fabric_->poll(events, want) < want && fabric_->tryWait()) {
        armed = true;
        break;
      }
    }
    if (armed) {
      // Manual progress: a send the provider could not finish moves on only when someone
      // reads the CQ, and not every provider's fd reports that the socket became writable.
      if (fabric_->outstandingOps() > 0) uv_timer_start(&w->timer, TimerCb, kProgressMs, 0);
      else uv_timer_stop(&w->timer);
    } else {
      uv_timer_start(&w->timer, TimerCb, 0, 0);  // more to read: next loop turn, after I/O
    }
    if (events.empty()) {
      emptyWakes_++;
      return;
    }
    Napi::HandleScope scope(env_);
    try {
      watchCb_.MakeCallback(Napi::Object::New(env_), {toJs(env_, events)}, *watchCtx_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env_, e.Value());
    }
  }

  static void TimerCb(uv_timer_t* h) {
    auto* x = static_cast<Watcher*>(h->data);
    x->self->timerWakes_++;
    x->self->Drain();
  }

  void StopWatch() {
    Watcher* w = watch_;
    if (w == nullptr) return;
    watch_ = nullptr;
    // The fd belongs to the CQ: stop watching it before the fabric closes it.
    uv_poll_stop(&w->poll);
    uv_timer_stop(&w->timer);
    w->pending = 2;
    auto done = [](uv_handle_t* h) {
      auto* x = static_cast<Watcher*>(h->data);
      if (--x->pending == 0) delete x;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), done);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->timer), done);
    watchCb_.Reset();
    watchCtx_.reset();
    Unref();
  }

  // start(cb): progress thread; cb(events[]) is called on the JS thread per batch.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (running_) return env.Undefined();
    // The JS object stays alive while a delivery may still be queued.
    Ref();
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "rdma-progress", 0, 1,
                                          [this](Napi::Env) { Unref(); });
    // Naps (shm) can be cut short; a provider whose wait sleeps needs no eventfd.
    if (!fabric_->waitSleeps() && wakeFd_ < 0) wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    running_ = true;
    thread_ = std::thread([this] { Run(); });
    return env.Undefined();
  }

  // A send from JS. Without a doorbell a reply tends to follow, so a napping progress
  // thread wakes up to look for it; with one the reply rings, and only a send that
  // needs progress (one in flight until a CQ read completes it, or a failed one: a full
  // queue) wakes the thread. Lock-free unless the thread is in a long nap: napping_ is
  // set before the thread looks at sendSeq_ and sendSeq_ before this looks at napping_
  // (both seq_cst), so one of the two sees the other, and the eventfd keeps a wake-up
  // that comes before the thread's ppoll.
  void NoteSend(bool needsProgress) {
    sendSeq_.fetch_add(1);
    if (napping_.load() && wakeFd_ >= 0 && (needsProgress || fabric_->bellFd() < 0)) {
      const uint64_t one = 1;
      ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
      (void)ignored;
    }
  }

  void Run() {
    using Clock = std::chrono::steady_clock;
    std::vector<Event> batch;
    const auto spin = std::chrono::microseconds(spinUs_);
    auto lastActivity = Clock::now() - spin;
    // Without a sleeping wait (shm), the thread naps between reads of the CQ, and every
    // wake-up costs 20-70 µs of CPU on a virtualized, loaded host (a timer, two context
    // switches): an idle endpoint must wake rarely. The nap grows kNapGrowth-fold from
    // kNapMinUs while nothing arrives, up to kNapBusyMaxUs while sends are in flight and
    // kNapMaxUs otherwise. With a doorbell (doorbell.h) peers ring after posting to us,
    // at most once per ring gap, so what a peer sends within the gap after a ring comes
    // unrung: the thread reads the CQ for kBellQuietUs after the last ring, then sleeps
    // up to kBellNapUs. A send cuts that sleep short only when it needs progress to
    // complete; a reply rings. Without a doorbell, a send holds the nap at kNapMinUs for
    // kNapFlatUs, the reply's likely window. A fine timer slack makes a 20 µs nap take
    // about that, not the default 50 µs on top.
    const bool naps = !fabric_->waitSleeps();
    const bool bell = naps && fabric_->bellFd() >= 0;
    uint32_t napUs = 0;  // the last nap; 0 after a completion
    uint64_t sendsSeen = sendSeq_.load();
    auto lastSend = Clock::now() - std::chrono::microseconds(kNapFlatUs);
    auto lastRing = Clock::now() - std::chrono::microseconds(kBellQuietUs);
    if (naps) prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    while (running_) {
      {
        std::unique_lock<std::mutex> lock(qmu_);
        qcv_.wait_for(lock, std::chrono::milliseconds(50),
                      [this] { return !running_ || queue_.size() < kQueuedBatchesMax; });
        if (!running_) break;
        if (queue_.size() >= kQueuedBatchesMax) continue;
      }
      // Right after activity the next completion (a reply, a credit) tends to follow
      // within microseconds: reading the CQ for spinUs catches it without the sleep and
      // wake-up of fi_cq_sread. Bounded, so an idle endpoint costs no CPU.
      progressWakes_.fetch_add(1, std::memory_order_relaxed);
      size_t got = fabric_->poll(batch, kPollMax);
      if (got == 0) {
        if (Clock::now() - lastActivity < spin) {
          std::this_thread::yield();
          continue;
        }
        if (!naps) {
          // Manual progress: with sends outstanding, come back soon even if nothing
          // signals (not every provider's wait object reports a writable socket).
          got = fabric_->waitAndPoll(batch, kPollMax, fabric_->outstandingOps() > 0 ? kProgressMs : 10);
        } else {
          const auto now = Clock::now();
          const uint64_t sends = sendSeq_.load();
          if (sends != sendsSeen) {
            sendsSeen = sends;
            lastSend = now;
          }
          const bool busy = fabric_->outstandingOps() > 0;
          if (busy && bell) fabric_->ringOutstanding();
          uint32_t next = napUs == 0 ? kNapMinUs : napUs * kNapGrowth;
          const uint32_t cap = busy || bell ? kNapBusyMaxUs : kNapMaxUs;
          if (next > cap) next = cap;
          if (bell) {
            if (!busy && now - lastRing >= std::chrono::microseconds(kBellQuietUs)) next = kBellNapUs;
          } else if (now - lastSend < std::chrono::microseconds(kNapFlatUs)) {
            next = kNapMinUs;
          }
          napUs = next;
          if (Nap(napUs, sendsSeen)) lastRing = Clock::now();
          continue;
        }
      }
      if (got > 0) {
        lastActivity = Clock::now();
        napUs = 0;
      }
      if (batch.empty()) continue;
      bool notify = false;
      {
        std::lock_guard<std::mutex> lock(qmu_);
        queue_.push_back(std::move(batch));
        notify = !notifyPending_;
        notifyPending_ = true;
      }
      batch = std::vector<Event>();
      if (notify) {
        tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function cb) { Deliver(env, cb); });
      }
    }
  }

  // Sleeps napUs, less when a peer rings the bell, close() stops the thread, or (long
  // naps only: a short one is not worth a write per send) JS sends. True when rung.
  bool Nap(uint32_t napUs, uint64_t sendsSeen) {
    progressNaps_.fetch_add(1, std::memory_order_relaxed);
    const bool wakeable = napUs >= kNapWakeableUs;
    if (wakeable) {
      napping_.store(true);
      if (sendSeq_.load() != sendsSeen) {
        napping_.store(false);
        return false;
      }
    }
    pollfd fds[2] = {{wakeFd_, POLLIN, 0}, {fabric_->bellFd(), POLLIN, 0}};
    const nfds_t n = fds[1].fd >= 0 ? 2 : 1;
    const timespec ts{static_cast<time_t>(napUs / 1000000), static_cast<long>(napUs % 1000000) * 1000};
    const int ready = ::ppoll(fds, n, &ts, nullptr);
    if (wakeable) napping_.store(false);
    if (ready <= 0) return false;
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      ssize_t ignored = ::read(wakeFd_, &count, sizeof count);
      (void)ignored;
    }
    if (n == 2 && fds[1].revents != 0) {
      bellWakes_.fetch_add(1, std::memory_order_relaxed);
      fabric_->drainBell();
      return true;
    }
    return false;
  }

  void Deliver(Napi::Env env, Napi::Function cb) {
    if (!fabric_ || fabric_->closed()) return;
    std::deque<std::vector<Event>> batches;
    {
      std::lock_guard<std::mutex> lock(qmu_);
      batches.swap(queue_);
      notifyPending_ = false;
    }
    qcv_.notify_all();
    size_t n = 0;
    for (auto& b : batches) n += b.size();
    Napi::Array arr = Napi::Array::New(env, n);
    uint32_t i = 0;
    for (auto& b : batches)
      for (auto& ev : b) arr.Set(i++, toJs(env, ev));
    cb.Call({arr});
  }

  void Stop() {
    if (running_) {
      running_ = false;
      qcv_.notify_all();
      if (wakeFd_ >= 0) {
        const uint64_t one = 1;
        ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
        (void)ignored;
      }
      if (fabric_) fabric_->signal();
      if (thread_.joinable()) thread_.join();
      tsfn_.Release();
    }
  }

  void CloseWakeFd() {
    if (wakeFd_ >= 0) ::close(wakeFd_);
    wakeFd_ = -1;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    CloseWakeFd();
    StopWatch();
    if (fabric_) fabric_->close();
    {
      std::lock_guard<std::mutex> lock(qmu_);
      queue_.clear();
    }
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("closed", !fabric_ || fabric_->closed());
    o.Set("outstandingOps", fabric_ ? static_cast<double>(fabric_->outstandingOps()) : 0.0);
    o.Set("openRings", fabric_ ? static_cast<double>(fabric_->openRings()) : 0.0);
    o.Set("progressThread", running_.load());
    o.Set("watching", watch_ != nullptr);
    o.Set("fdWakes", static_cast<double>(fdWakes_));
    o.Set("timerWakes", static_cast<double>(timerWakes_));
    o.Set("emptyWakes", static_cast<double>(emptyWakes_));
    o.Set("completedOps", fabric_ ? static_cast<double>(fabric_->completedOps()) : 0.0);
    o.Set("progressWakes", static_cast<double>(progressWakes_.load(std::memory_order_relaxed)));
    o.Set("progressNaps", static_cast<double>(progressNaps_.load(std::memory_order_relaxed)));
    o.Set("bellWakes", static_cast<double>(bellWakes_.load(std::memory_order_relaxed)));
    o.Set("ringsSent", fabric_ ? static_cast<double>(fabric_->ringsSent()) : 0.0);
    o.Set("doorbell", fabric_ && fabric_->bellFd() >= 0);
    return o;
  }

  struct Watcher {
    uv_poll_t poll;
    uv_timer_t timer;
    FabricWrap* self = nullptr;
    int pending = 0;
    bool armed = false;
  };
  // With sends outstanding and nothing arriving, the CQ is read at least this often.
  static constexpr int kProgressMs = 1;
  // Progress-thread naps without a sleeping wait (shm); see Run().
  static constexpr uint32_t kNapMinUs = 20;
  static constexpr uint32_t kNapGrowth = 4;
  static constexpr uint32_t kNapBusyMaxUs = 1000;
  static constexpr uint32_t kNapMaxUs = 10000;
  static constexpr uint32_t kNapFlatUs = 1000;
  // With a doorbell: read the CQ for the peers' ring gap after a ring, then sleep up to
  // kBellNapUs: only a peer that cannot ring waits that long.
  static constexpr uint32_t kBellQuietUs = rdma::Fabric::kRingGapUs;
  static constexpr uint32_t kBellNapUs = 20000;
  // Naps at least this long end early when JS sends.
  static constexpr uint32_t kNapWakeableUs = 200;

  std::unique_ptr<rdma::Fabric> fabric_;
  uint32_t spinUs_ = 0;
  Watcher* watch_ = nullptr;
  Napi::FunctionReference watchCb_;
  std::unique_ptr<Napi::AsyncContext> watchCtx_;
  napi_env env_ = nullptr;
  // Event-loop mode wake-ups: by the fd, by the timer, and those that found nothing to deliver.
  uint64_t fdWakes_ = 0;
  uint64_t timerWakes_ = 0;
  uint64_t emptyWakes_ = 0;
  std::atomic<bool> running_{false};
  // Progress thread: CQ reads and naps (shm), for the idle-cost test and diagnosis.
  std::atomic<uint64_t> progressWakes_{0};
  std::atomic<uint64_t> progressNaps_{0};
  std::atomic<uint64_t> bellWakes_{0};
  // Sends from JS (NoteSend) and the nap they can cut short through wakeFd_ (an eventfd).
  std::atomic<uint64_t> sendSeq_{0};
  std::atomic<bool> napping_{false};
  int wakeFd_ = -1;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  std::mutex qmu_;
  std::condition_variable qcv_;
  std::deque<std::vector<Event>> queue_;
  bool notifyPending_ = false;
};

// ofi_rxm sizes its per-connection and per-endpoint pools from these; its defaults cost
// tens of MiB of page faults per endpoint (about 1 s on a loaded machine) for queue
// depths this transport never uses (it bounds its own in-flight chunks by credits).
// Set only when the operator has not set them.
void tuneProviderDefaults() {
  setenv("FI_OFI_RXM_MSG_RX_SIZE", "64", 0);
  setenv("FI_OFI_RXM_MSG_TX_SIZE", "64", 0);
  setenv("FI_OFI_RXM_CM_PROGRESS_INTERVAL", "1000", 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tuneProviderDefaults();
  exports.Set("Fabric", FabricWrap::Init(env));
  exports.Set("EAGAIN", Napi::Number::New(env, -FI_EAGAIN));
  return exports;
}

}  // namespace

NODE_API_MODULE(rdma_native, Init)
