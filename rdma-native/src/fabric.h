// One libfabric endpoint and every resource hanging off it (fabric, domain, AV,
// CQ, endpoint, receive slots, per-peer ring memory regions). Pure C++ with no
// Node dependency: the N-API layer (addon.cc) owns one Fabric and forwards calls.
// Mechanical only: moving bytes and completions. Policy (framing, credits, peer
// bookkeeping, violations) lives in the TypeScript wrapper.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "doorbell.h"

namespace rdma {

struct FabricOptions {
  std::string provider;  // "tcp;ofi_rxm", "shm", "verbs;ofi_rxm"
  std::string node;      // local bind address (empty: provider default)
  std::string service;   // local port ("0" or empty: ephemeral)
  bool waitable = false; // CQ with a wait object (progress thread blocks in fi_cq_sread)
  bool waitFd = false;   // ... and that object is a file descriptor the event loop can watch
  bool doorbell = true;  // shm: bind a doorbell and ring the peers' (doorbell.h)
  uint32_t recvSlots = 64;
  uint32_t recvSlotBytes = 65536;
  uint32_t cqSize = 4096;
  uint32_t txSize = 256;
};

enum class EventKind : int32_t {
  // Successful send and write completions are counted, not reported (kinds 1 and 5 are
  // retired): nothing waits on them, and each would otherwise wake JavaScript once more
  // per message sent. The native copy of the payload is freed either way.
  Recv = 2,       // src, data
  RemoteData = 3, // src, cqData, len
  Error = 4,      // ctx (or -1), err, message
};

struct Event {
  explicit Event(EventKind k) : kind(k) {}
  EventKind kind;
  int64_t src = -1;  // fi_addr of the sender, -1 when the provider did not report it
  int64_t ctx = -1;
  uint64_t cqData = 0;
  uint64_t len = 0;
  int32_t err = 0;
  std::string message;
  std::vector<uint8_t> data;
};

struct Ring {
  std::unique_ptr<uint8_t[]> mem;
  size_t bytes = 0;
  fid_mr* mr = nullptr;
};

class Fabric {
 public:
  explicit Fabric(const FabricOptions& opts);  // throws std::runtime_error
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  void close();
  bool closed() const { return closed_; }

  std::string providerName() const { return providerName_; }
  bool virtAddr() const { return virtAddr_; }
  std::vector<uint8_t> name() const;

  int64_t avInsert(const std::vector<uint8_t>& addr);  // throws
  void avRemove(int64_t addr);

  // A ring the peer may write into (FI_REMOTE_WRITE only). Returns the id.
  uint32_t openRing(size_t bytes, uint64_t* remoteAddr, uint64_t* key);
  bool closeRing(uint32_t id);
  // Copies [offset, offset+len) out of the ring; false when out of bounds.
  bool copyOut(uint32_t id, uint64_t offset, uint64_t len, uint8_t* dst) const;
  size_t ringBytes(uint32_t id) const;

  // Two-sided send / one-sided write with remote CQ data. Return 0, -FI_EAGAIN or another -errno.
  // Up to injectBytes() they are injects: the provider copies the payload at once and
  // reports no completion, which saves an allocation, a CQ entry and (with a wait object)
  // a signal and a wake-up per message. A failed inject is not reported; a lost peer
  // still shows up through the larger operations and the transport's heartbeats.
  int send(int64_t dest, const uint8_t* buf, size_t len, int64_t ctx);
  int writeData(int64_t dest, const uint8_t* buf, size_t len, uint64_t raddr, uint64_t key,
                uint64_t data, int64_t ctx);

  // Drains up to `max` completions into `out`. Returns the number of completions read
  // (>= 0), which counts the send/write completions that add no event.
  size_t poll(std::vector<Event>& out, size_t max);
  // Blocks up to timeoutMs for a completion (waitable CQ only), then polls.
  size_t waitAndPoll(std::vector<Event>& out, size_t max, int timeoutMs);
  void signal();  // wakes a waitAndPoll blocked in fi_cq_sread
  bool isWaitable() const;
  // Whether fi_cq_sread sleeps. shm's wait object is FI_WAIT_YIELD: sread spins calling
  // sched_yield, a core per process for as long as it waits. A provider that does not
  // say which wait object it chose (shm) counts as spinning.
  bool waitSleeps() const { return waitable_ && !waitYields_; }
  // The CQ's wait file descriptor (waitFd option), or -1.
  int waitFd() const;
  // fi_trywait on the CQ: true when blocking on the fd is safe (nothing left to read;
  // the fd will become readable when something arrives), false when the caller must
  // poll again first.
  bool tryWait();

  // shm's doorbells (doorbell.h): this endpoint's bell fd (-1: none, the progress thread
  // must look at the CQ on its own), draining it, and ringing the peers that sends still
  // in flight wait on (a provider without cross-memory attach copies large messages in
  // segments that need both sides' progress). send() and writeData() ring the
  // destination themselves (after -FI_EAGAIN too: the peer must move first), at most
  // once per kRingGapUs per peer: a receiver keeps reading its CQ for that long after a
  // ring (see addon.cc), so what follows within the gap unrung is still picked up.
  static constexpr uint32_t kRingGapUs = 200;
  int bellFd() const { return closed_ ? -1 : bell_.fd(); }
  void drainBell() { bell_.drain(); }
  void ringOutstanding();
  uint64_t ringsSent() const { return ringsSent_.load(std::memory_order_relaxed); }

  size_t injectBytes() const { return injectBytes_; }
  size_t outstandingOps() const;
  uint64_t completedOps() const { return completedOps_.load(std::memory_order_relaxed); }
  size_t openRings() const;

 private:
  struct Op {
    uint32_t magic;
    int64_t ctx;
    bool write;
    std::vector<uint8_t> buf;
    int64_t dest;
  };
  struct PeerBell {
    sockaddr_un addr;
    socklen_t len;
    int64_t lastRingNs;
  };
  struct RecvSlot {
    uint32_t magic;
    std::unique_ptr<uint8_t[]> mem;
    size_t bytes;
  };
  static constexpr uint32_t kOpMagic = 0x4f50u;
  static constexpr uint32_t kSlotMagic = 0x534cu;

  void postRecv(RecvSlot* slot);
  void handleEntries(const fi_cq_data_entry* entries, const fi_addr_t* srcs, ssize_t n,
                     std::vector<Event>& out);
  void handleError(std::vector<Event>& out);
  void releaseAll();
  void ring(int64_t dest);

  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_av* av_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_ep* ep_ = nullptr;
  bool closed_ = false;
  bool waitable_ = false;
  bool waitYields_ = false;
  bool virtAddr_ = false;
  bool provKey_ = false;
  std::string providerName_;
  std::vector<std::unique_ptr<RecvSlot>> slots_;
  mutable std::mutex mu_;  // guards ops_, rings_, nextRing_
  std::unordered_set<Op*> ops_;
  std::unordered_map<uint32_t, Ring> rings_;
  uint32_t nextRing_ = 1;
  uint64_t keySeed_ = 0;
  int waitFd_ = -1;
  size_t injectBytes_ = 0;
  std::atomic<uint64_t> completedOps_{0};  // injects (JS thread) and completions (poller)
  Doorbell bell_;
  bool peersHaveBells_ = false;  // shm: peers have doorbells to ring
  std::mutex bellMu_;   // guards peerBells_ (JS thread sends, progress thread ringOutstanding)
  std::unordered_map<int64_t, PeerBell> peerBells_;
  std::atomic<uint64_t> ringsSent_{0};
};

}  // namespace rdma
