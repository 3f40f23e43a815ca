#include "fabric.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

namespace rdma {

namespace {

std::string fiError(const char* what, int rc) {
  return std::string(what) + ": " + fi_strerror(rc < 0 ? -rc : rc) + " (" + std::to_string(rc) + ")";
}

void check(const char* what, int rc) {
  if (rc != 0) throw std::runtime_error(fiError(what, rc));
}

// Messages up to this size are injected (control messages, small chunks: consensus
// votes). Larger injects would only move the copy into the provider.
constexpr size_t kInjectBytesWanted = 4096;

void closeFid(fid* f) {
  if (f != nullptr) fi_close(f);
}

}  // namespace

Fabric::Fabric(const FabricOptions& opts) : waitable_(opts.waitable) {
  fi_info* hints = fi_allocinfo();
  if (hints == nullptr) throw std::runtime_error("fi_allocinfo failed");
  hints->ep_attr->type = FI_EP_RDM;
  hints->caps = FI_MSG | FI_RMA | FI_SOURCE;
  hints->mode = FI_CONTEXT;
  // The modes and MR modes this code supports; the provider keeps the subset it needs.
  hints->domain_attr->mr_mode = FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  hints->domain_attr->threading = FI_THREAD_SAFE;
  hints->domain_attr->av_type = FI_AV_TABLE;
  hints->tx_attr->msg_order = FI_ORDER_SAS | FI_ORDER_WAW | FI_ORDER_SAW | FI_ORDER_WAS;
  hints->rx_attr->msg_order = FI_ORDER_SAS | FI_ORDER_WAW | FI_ORDER_SAW | FI_ORDER_WAS;
  // Queue depths sized to what we use: providers size their internal buffer pools from
  // these, and the defaults cost tens of MiB (and ~1 s of page faults) per endpoint.
  hints->tx_attr->size = opts.txSize;
  // Small messages go out as injects (see send()); ofi_rxm offers 64 bytes unless asked.
  hints->tx_attr->inject_size = kInjectBytesWanted;
  hints->rx_attr->size = opts.recvSlots * 2 > 64 ? opts.recvSlots * 2 : 64;
  if (!opts.provider.empty()) hints->fabric_attr->prov_name = strdup(opts.provider.c_str());
  const char* node = opts.node.empty() ? nullptr : opts.node.c_str();
  const char* service = opts.service.empty() ? nullptr : opts.service.c_str();
  int rc = fi_getinfo(FI_VERSION(1, 17), node, service, node || service ? FI_SOURCE : 0, hints, &info_);
  if (rc != 0) {
    hints->tx_attr->inject_size = 0;  // the provider's own limit
    rc = fi_getinfo(FI_VERSION(1, 17), node, service, node || service ? FI_SOURCE : 0, hints, &info_);
  }
  if (rc != 0) {
    // Some providers cannot promise write-after-write ordering; the wrapper detects
    // reordering itself (ring offsets are checked), so retry with send ordering only.
    hints->tx_attr->msg_order = FI_ORDER_SAS;
    hints->rx_attr->msg_order = FI_ORDER_SAS;
    rc = fi_getinfo(FI_VERSION(1, 17), node, service, node || service ? FI_SOURCE : 0, hints, &info_);
  }
  fi_freeinfo(hints);
  check("fi_getinfo", rc);
  try {
    providerName_ = info_->fabric_attr->prov_name ? info_->fabric_attr->prov_name : "";
    virtAddr_ = (info_->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    injectBytes_ = info_->tx_attr->inject_size;
    provKey_ = (info_->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
    check("fi_fabric", fi_fabric(info_->fabric_attr, &fabric_, nullptr));
    check("fi_domain", fi_domain(fabric_, info_, &domain_, nullptr));
    fi_av_attr avAttr{};
    avAttr.type = FI_AV_TABLE;
    check("fi_av_open", fi_av_open(domain_, &avAttr, &av_, nullptr));
    fi_cq_attr cqAttr{};
    cqAttr.format = FI_CQ_FORMAT_DATA;
    cqAttr.size = opts.cqSize;
    cqAttr.wait_obj = opts.waitFd ? FI_WAIT_FD : opts.waitable ? FI_WAIT_UNSPEC : FI_WAIT_NONE;
    rc = fi_cq_open(domain_, &cqAttr, &cq_, nullptr);
    if (rc != 0 && opts.waitFd) {
      // shm has no wait fd; a wait object of its own choice still lets a thread sleep.
      cqAttr.wait_obj = FI_WAIT_UNSPEC;
      rc = fi_cq_open(domain_, &cqAttr, &cq_, nullptr);
    }
    if (rc != 0 && (opts.waitable || opts.waitFd)) {
      waitable_ = false;
      cqAttr.wait_obj = FI_WAIT_NONE;
      rc = fi_cq_open(domain_, &cqAttr, &cq_, nullptr);
    }
    check("fi_cq_open", rc);
    check("fi_endpoint", fi_endpoint(domain_, info_, &ep_, nullptr));
    check("fi_ep_bind(av)", fi_ep_bind(ep_, &av_->fid, 0));
    check("fi_ep_bind(cq)", fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV));
    check("fi_enable", fi_enable(ep_));
    if (waitable_) {
      // Only a wait object known to sleep is trusted. shm (1.17) answers FI_GETWAITOBJ
      // with -FI_ENOSYS and turns FI_WAIT_UNSPEC into FI_WAIT_YIELD, so an unanswered
      // query means a waiting fi_cq_sread spins.
      fi_wait_obj obj = FI_WAIT_UNSPEC;
      waitYields_ = fi_control(&cq_->fid, FI_GETWAITOBJ, &obj) != 0 || obj == FI_WAIT_YIELD;
    }
    if (opts.waitFd && waitable_ && !waitYields_) {
      int fd = -1;
      if (fi_control(&cq_->fid, FI_GETWAIT, &fd) == 0 && fd >= 0) waitFd_ = fd;
    }
    if (providerName_ == "shm" && opts.doorbell) {
      peersHaveBells_ = true;
      bell_.listen(name());  // without one, the progress thread naps instead
    }
    std::random_device rd;
    keySeed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    slots_.reserve(opts.recvSlots);
    for (uint32_t i = 0; i < opts.recvSlots; i++) {
      auto slot = std::make_unique<RecvSlot>();
      slot->magic = kSlotMagic;
      slot->bytes = opts.recvSlotBytes;
      slot->mem.reset(new uint8_t[opts.recvSlotBytes]);
      postRecv(slot.get());
      slots_.push_back(std::move(slot));
    }
  } catch (...) {
    releaseAll();
    throw;
  }
}

Fabric::~Fabric() { releaseAll(); }

void Fabric::close() { releaseAll(); }

void Fabric::releaseAll() {
  if (closed_) return;
  closed_ = true;
  // Endpoint first: no completion can arrive into memory freed below.
  closeFid(ep_ ? &ep_->fid : nullptr);
  ep_ = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, ring] : rings_) closeFid(ring.mr ? &ring.mr->fid : nullptr);
    rings_.clear();
    for (Op* op : ops_) delete op;
    ops_.clear();
  }
  slots_.clear();
  {
    std::lock_guard<std::mutex> lock(bellMu_);
    bell_.close();
    peerBells_.clear();
  }
  waitFd_ = -1;  // owned by the CQ
  closeFid(cq_ ? &cq_->fid : nullptr);
  cq_ = nullptr;
  closeFid(av_ ? &av_->fid : nullptr);
  av_ = nullptr;
  closeFid(domain_ ? &domain_->fid : nullptr);
  domain_ = nullptr;
  closeFid(fabric_ ? &fabric_->fid : nullptr);
  fabric_ = nullptr;
  if (info_) fi_freeinfo(info_);
  info_ = nullptr;
}

std::vector<uint8_t> Fabric::name() const {
  if (closed_) throw std::runtime_error("fabric closed");
  std::vector<uint8_t> out(256);
  size_t len = out.size();
  int rc = fi_getname(&ep_->fid, out.data(), &len);
  if (rc == -FI_ETOOSMALL) {
    out.resize(len);
    rc = fi_getname(&ep_->fid, out.data(), &len);
  }
  check("fi_getname", rc);
  out.resize(len);
  return out;
}

int64_t Fabric::avInsert(const std::vector<uint8_t>& addr) {
  if (closed_) throw std::runtime_error("fabric closed");
  fi_addr_t out = FI_ADDR_NOTAVAIL;
  int n = fi_av_insert(av_, addr.data(), 1, &out, 0, nullptr);
  if (n != 1 || out == FI_ADDR_NOTAVAIL) throw std::runtime_error(fiError("fi_av_insert", n < 0 ? n : -FI_EINVAL));
  if (peersHaveBells_) {
    PeerBell bell{};
    bell.len = doorbellAddress(addr.data(), addr.size(), &bell.addr);
    bell.lastRingNs = INT64_MIN / 2;
    std::lock_guard<std::mutex> lock(bellMu_);
    peerBells_[static_cast<int64_t>(out)] = bell;
  }
  return static_cast<int64_t>(out);
}

void Fabric::avRemove(int64_t addr) {
  if (closed_) return;
  fi_addr_t a = static_cast<fi_addr_t>(addr);
  fi_av_remove(av_, &a, 1, 0);
  std::lock_guard<std::mutex> lock(bellMu_);
  peerBells_.erase(addr);
}

int Fabric::waitFd() const { return closed_ ? -1 : waitFd_; }

bool Fabric::tryWait() {
  if (closed_ || waitFd_ < 0) return false;
  fid* fids[1] = {&cq_->fid};
  return fi_trywait(fabric_, fids, 1) == FI_SUCCESS;
}

uint32_t Fabric::openRing(size_t bytes, uint64_t* remoteAddr, uint64_t* key) {
  if (closed_) throw std::runtime_error("fabric closed");
  Ring ring;
  ring.bytes = bytes;
  ring.mem.reset(new uint8_t[bytes]);
  std::memset(ring.mem.get(), 0, bytes);
  std::lock_guard<std::mutex> lock(mu_);
  // A key that cannot be guessed from another peer's key (providers without PROV_KEY use ours).
  uint64_t requested = provKey_ ? 0 : (keySeed_ ^ (static_cast<uint64_t>(nextRing_) * 0x9e3779b97f4a7c15ull));
  check("fi_mr_reg", fi_mr_reg(domain_, ring.mem.get(), bytes, FI_REMOTE_WRITE, 0, requested, 0,
                               &ring.mr, nullptr));
  *key = fi_mr_key(ring.mr);
  *remoteAddr = virtAddr_ ? reinterpret_cast<uint64_t>(ring.mem.get()) : 0;
  uint32_t id = nextRing_++;
  rings_.emplace(id, std::move(ring));
  return id;
}

bool Fabric::closeRing(uint32_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rings_.find(id);
  if (it == rings_.end()) return false;
  // Deregistering revokes the key: later writes by the peer fail on its side.
  closeFid(it->second.mr ? &it->second.mr->fid : nullptr);
  rings_.erase(it);
  return true;
}

bool Fabric::copyOut(uint32_t id, uint64_t offset, uint64_t len, uint8_t* dst) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rings_.find(id);
  if (it == rings_.end()) return false;
  const uint64_t size = it->second.bytes;
  if (offset > size || len > size - offset) return false;
  std::memcpy(dst, it->second.mem.get() + offset, len);
  return true;
}

size_t Fabric::ringBytes(uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rings_.find(id);
  return it == rings_.end() ? 0 : it->second.bytes;
}

void Fabric::postRecv(RecvSlot* slot) {
  if (closed_) return;
  // The queue has room for every slot (rx size >= slots), so EAGAIN is transient:
  // the provider needs a progress call. Bounded, so a broken provider cannot hang us.
  for (int attempt = 0; attempt < 1000; attempt++) {
    ssize_t rc = fi_recv(ep_, slot->mem.get(), slot->bytes, nullptr, FI_ADDR_UNSPEC, slot);
    if (rc != -FI_EAGAIN) return;
    fi_cq_read(cq_, nullptr, 0);
  }
}

int Fabric::send(int64_t dest, const uint8_t* buf, size_t len, int64_t ctx) {
  if (closed_) return -FI_EINVAL;
  if (len <= injectBytes_) {
    const ssize_t rc = fi_inject(ep_, buf, len, static_cast<fi_addr_t>(dest));
    if (rc == 0) completedOps_++;
    if (rc == 0 || rc == -FI_EAGAIN) ring(dest);
    return static_cast<int>(rc);
  }
  auto* op = new Op{kOpMagic, ctx, false, std::vector<uint8_t>(buf, buf + len), dest};
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.insert(op);
  }
  ssize_t rc = fi_send(ep_, op->buf.data(), op->buf.size(), nullptr, static_cast<fi_addr_t>(dest), op);
  if (rc != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.erase(op);
    delete op;
  }
  if (rc == 0 || rc == -FI_EAGAIN) ring(dest);
  return static_cast<int>(rc);
}

int Fabric::writeData(int64_t dest, const uint8_t* buf, size_t len, uint64_t raddr, uint64_t key,
                      uint64_t data, int64_t ctx) {
  if (closed_) return -FI_EINVAL;
  if (len <= injectBytes_) {
    const ssize_t rc = fi_inject_writedata(ep_, buf, len, data, static_cast<fi_addr_t>(dest), raddr, key);
    if (rc == 0) completedOps_++;
    if (rc == 0 || rc == -FI_EAGAIN) ring(dest);
    return static_cast<int>(rc);
  }
  auto* op = new Op{kOpMagic, ctx, true, std::vector<uint8_t>(buf, buf + len), dest};
  {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.insert(op);
  }
  ssize_t rc = fi_writedata(ep_, op->buf.data(), op->buf.size(), nullptr, data,
                            static_cast<fi_addr_t>(dest), raddr, key, op);
  if (rc != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.erase(op);
    delete op;
  }
  if (rc == 0 || rc == -FI_EAGAIN) ring(dest);
  return static_cast<int>(rc);
}

void Fabric::handleEntries(const fi_cq_data_entry* entries, const fi_addr_t* srcs, ssize_t n,
                           std::vector<Event>& out) {
  for (ssize_t i = 0; i < n; i++) {
    const fi_cq_data_entry& e = entries[i];
    const int64_t src = srcs[i] == FI_ADDR_NOTAVAIL ? -1 : static_cast<int64_t>(srcs[i]);
    if ((e.flags & FI_REMOTE_CQ_DATA) && (e.flags & FI_REMOTE_WRITE)) {
      Event ev{EventKind::RemoteData};
      ev.src = src;
      ev.cqData = e.data;
      ev.len = e.len;
      out.push_back(std::move(ev));
      continue;
    }
    if (e.op_context == nullptr) continue;
    const uint32_t magic = *static_cast<const uint32_t*>(e.op_context);
    if (magic == kSlotMagic && (e.flags & FI_RECV)) {
      auto* slot = static_cast<RecvSlot*>(e.op_context);
      Event ev{EventKind::Recv};
      ev.src = src;
      const size_t len = e.len <= slot->bytes ? e.len : slot->bytes;
      ev.len = len;
      ev.data.assign(slot->mem.get(), slot->mem.get() + len);
      out.push_back(std::move(ev));
      postRecv(slot);
    } else if (magic == kOpMagic) {
      auto* op = static_cast<Op*>(e.op_context);
      completedOps_++;
      std::lock_guard<std::mutex> lock(mu_);
      ops_.erase(op);
      delete op;
    }
  }
}

void Fabric::handleError(std::vector<Event>& out) {
  fi_cq_err_entry err{};
  if (fi_cq_readerr(cq_, &err, 0) != 1) return;
  Event ev{EventKind::Error};
  ev.err = err.err;
  ev.message = fi_strerror(err.err);
  if (err.op_context != nullptr) {
    const uint32_t magic = *static_cast<const uint32_t*>(err.op_context);
    if (magic == kOpMagic) {
      auto* op = static_cast<Op*>(err.op_context);
      ev.ctx = op->ctx;
      std::lock_guard<std::mutex> lock(mu_);
      ops_.erase(op);
      delete op;
    } else if (magic == kSlotMagic) {
      // A truncated or failed receive: the slot goes back to the provider.
      ev.message = std::string("receive failed: ") + ev.message;
      postRecv(static_cast<RecvSlot*>(err.op_context));
    }
  }
  out.push_back(std::move(ev));
}

// After a post, and after -FI_EAGAIN too: then the peer must move first (answer our
// connection request, drain its command queue), which it does only when it reads its CQ.
void Fabric::ring(int64_t dest) {
  if (!peersHaveBells_) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  std::lock_guard<std::mutex> lock(bellMu_);
  auto it = peerBells_.find(dest);
  if (it == peerBells_.end() || now - it->second.lastRingNs < int64_t{kRingGapUs} * 1000) return;
  it->second.lastRingNs = now;
  if (bell_.ring(it->second.addr, it->second.len)) ringsSent_.fetch_add(1, std::memory_order_relaxed);
}

void Fabric::ringOutstanding() {
  if (!peersHaveBells_ || closed_) return;
  std::vector<int64_t> dests;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Op* op : ops_)
      if (std::find(dests.begin(), dests.end(), op->dest) == dests.end()) dests.push_back(op->dest);
  }
  for (int64_t d : dests) ring(d);
}

size_t Fabric::poll(std::vector<Event>& out, size_t max) {
  if (closed_) return 0;
  constexpr size_t kBatch = 64;
  fi_cq_data_entry entries[kBatch];
  fi_addr_t srcs[kBatch];
  size_t total = 0;
  while (total < max) {
    size_t want = max - total < kBatch ? max - total : kBatch;
    ssize_t n = fi_cq_readfrom(cq_, entries, want, srcs);
    if (n > 0) {
      handleEntries(entries, srcs, n, out);
      total += static_cast<size_t>(n);
      // A short read drained the CQ: another read would only cost one more provider
      // progress pass (several syscalls on tcp;ofi_rxm) to learn that.
      if (static_cast<size_t>(n) < want) break;
      continue;
    }
    if (n == -FI_EAVAIL) {
      handleError(out);
      total++;
      continue;
    }
    break;
  }
  return total;
}

size_t Fabric::waitAndPoll(std::vector<Event>& out, size_t max, int timeoutMs) {
  if (closed_) return 0;
  size_t got = poll(out, max);
  if (got > 0 || !waitable_) return got;
  fi_cq_data_entry entry;
  fi_addr_t src = FI_ADDR_NOTAVAIL;
  ssize_t n = fi_cq_sreadfrom(cq_, &entry, 1, &src, nullptr, timeoutMs);
  if (n > 0) {
    handleEntries(&entry, &src, n, out);
    return 1 + poll(out, max - 1);
  }
  if (n == -FI_EAVAIL) {
    handleError(out);
    return 1 + poll(out, max - 1);
  }
  return 0;
}

void Fabric::signal() {
  if (!closed_ && waitable_) fi_cq_signal(cq_);
}

bool Fabric::isWaitable() const { return waitable_; }

size_t Fabric::outstandingOps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_.size();
}

size_t Fabric::openRings() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rings_.size();
}

}  // namespace rdma
