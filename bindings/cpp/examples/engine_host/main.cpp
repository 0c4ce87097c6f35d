// Engine host example: how a game engine (or any host with its own threads and memory)
// embeds qlinear. Copy the two adapters below, JobSystem and TrackingAllocator, and replace
// their insides with your engine's job system and allocator.
//
// What it shows:
//  1. qlinear never starts a thread here: every kernel call hands its tasks to the host's
//     job system through `qlinear_job_run_fn`, and the host decides which threads run them.
//  2. Packed weights live in memory the host hands out through `qlinear_alloc_fn` /
//     `qlinear_free_fn` (activations and outputs are always the caller's own buffers).
//  3. Results do not depend on who runs the tasks: every frame is checked bit for bit
//     against qlinear's default device (its own worker threads).
//
// Build it against an installed qlinear (see CMakeLists.txt); .ci/consumers.sh runs it under
// AddressSanitizer.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "qlinear.hpp"

// ---------------------------------------------------------------------------------------
// The host's job system: a fixed set of worker threads pulling closures from one queue.
// An engine already has one; only `run` below is qlinear-specific.
// ---------------------------------------------------------------------------------------
class JobSystem {
public:
    explicit JobSystem(std::size_t workers) {
        for (std::size_t i = 0; i < workers; i++) threads_.emplace_back([this] { work(); });
    }
    ~JobSystem() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    JobSystem(const JobSystem&) = delete;
    JobSystem& operator=(const JobSystem&) = delete;

    std::size_t threads() const { return threads_.size() + 1; }  // workers + the caller
    std::uint64_t tasks_run() const { return tasks_run_.load(); }

    // qlinear's contract (qlinear_job_run_fn): call task(task_ctx, i) exactly once for every
    // i in [0, n_tasks), on any threads, and return only when all have returned. It may be
    // called from several threads at once (one layer's forward on many threads), so each call
    // keeps its own counter. The caller helps instead of sleeping: with a busy engine this
    // also guarantees progress when every worker is taken.
    static void run(void* ctx, std::size_t n_tasks, qlinear_task_fn task, void* task_ctx) {
        auto* self = static_cast<JobSystem*>(ctx);
        struct Batch {
            std::atomic<std::size_t> next{0}, done{0};
        } batch;
        std::size_t n = n_tasks;
        auto drain = [&batch, n, task, task_ctx, self] {
            for (std::size_t i; (i = batch.next.fetch_add(1)) < n;) {
                task(task_ctx, i);
                self->tasks_run_.fetch_add(1);
                batch.done.fetch_add(1);
            }
        };
        std::size_t helpers = std::min(self->threads_.size(), n_tasks > 0 ? n_tasks - 1 : 0);
        {
            std::lock_guard<std::mutex> lock(self->m_);
            for (std::size_t h = 0; h < helpers; h++) self->queue_.push_back(drain);
        }
        self->cv_.notify_all();
        drain();
        // Every index is claimed; wait until the helpers' last tasks have returned. Helpers
        // that start after the batch is drained find nothing to do and leave at once.
        while (batch.done.load() < n) std::this_thread::yield();
        // A helper may still be about to read `batch.next`: wait until queued helpers of
        // this batch have left before `batch` goes out of scope.
        std::unique_lock<std::mutex> lock(self->m_);
        self->idle_.wait(lock, [self] { return self->queue_.empty() && self->busy_ == 0; });
    }

private:
    void work() {
        std::unique_lock<std::mutex> lock(m_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_ && queue_.empty()) return;
            auto job = std::move(queue_.front());
            queue_.pop_front();
            busy_++;
            lock.unlock();
            job();
            lock.lock();
            busy_--;
            idle_.notify_all();
        }
    }

    std::vector<std::thread> threads_;
    std::deque<std::function<void()>> queue_;
    std::mutex m_;
    std::condition_variable cv_, idle_;
    std::size_t busy_ = 0;
    bool stop_ = false;
    std::atomic<std::uint64_t> tasks_run_{0};
};

// ---------------------------------------------------------------------------------------
// The host's allocator: here aligned_alloc with accounting; in an engine, its arenas.
// qlinear asks for large, 64-byte aligned blocks when it packs weights and returns each
// with the same size and alignment.
// ---------------------------------------------------------------------------------------
struct TrackingAllocator {
    std::atomic<std::size_t> live_bytes{0}, peak_bytes{0}, blocks{0};

    static void* alloc(void* ctx, std::size_t size, std::size_t align) {
        auto* a = static_cast<TrackingAllocator*>(ctx);
        std::size_t rounded = (size + align - 1) / align * align;  // aligned_alloc's rule
        void* p = std::aligned_alloc(align, rounded);
        if (p == nullptr) return nullptr;  // qlinear reports QLINEAR_ERR_OUT_OF_MEMORY
        std::size_t live = a->live_bytes.fetch_add(size) + size;
        std::size_t peak = a->peak_bytes.load();
        while (live > peak && !a->peak_bytes.compare_exchange_weak(peak, live)) {
        }
        a->blocks.fetch_add(1);
        return p;
    }
    static void free(void* ctx, void* ptr, std::size_t size, std::size_t /*align*/) {
        auto* a = static_cast<TrackingAllocator*>(ctx);
        a->live_bytes.fetch_sub(size);
        a->blocks.fetch_sub(1);
        std::free(ptr);
    }
};

// A tiny model: an MLP block as an engine might run per frame for an NPC or animation net.
struct Model {
    qlinear::QuantizedLinear up, down, head;
};

Model build(const qlinear::Device& device, const std::vector<float>& w_up,
            const std::vector<float>& w_down, const std::vector<float>& w_head) {
    auto up_cfg = qlinear::QuantConfig::int4();  // cb4 codebook weights
    up_cfg.activation_mode(qlinear::ActivationMode::Dyn8);
    auto down_cfg = qlinear::QuantConfig::int8();
    auto head_cfg = qlinear::QuantConfig::int4_uniform();
    return Model{qlinear::quantize(device, w_up, 1024, 256, up_cfg),
                 qlinear::quantize(device, w_down, 256, 1024, down_cfg),
                 qlinear::quantize(device, w_head, 64, 256, head_cfg)};
}

std::vector<float> frame(const Model& m, const std::vector<float>& x, std::size_t rows) {
    std::vector<float> h = m.up.forward(x, rows);
    for (float& v : h) v = v > 0 ? v : 0;  // ReLU
    std::vector<float> z = m.down.forward(h, rows);
    return m.head.forward(z, rows);
}

std::vector<float> weights(std::size_t n, std::uint32_t seed) {
    std::vector<float> v(n);
    for (auto& x : v) {
        seed = seed * 1664525u + 1013904223u;
        x = (static_cast<float>(seed >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    return v;
}

int main() {
    const auto w_up = weights(1024 * 256, 1), w_down = weights(256 * 1024, 2),
               w_head = weights(64 * 256, 3);
    TrackingAllocator arena;
    std::uint64_t tasks = 0;
    int mismatches = 0;
    {
        JobSystem jobs(3);
        // The host device: the engine's threads and memory. It must outlive nothing but its
        // layers; the callbacks' contexts (jobs, arena) must outlive both.
        auto host = qlinear::Device::custom(jobs.threads(), nullptr, JobSystem::run, &jobs,
                                            TrackingAllocator::alloc, TrackingAllocator::free,
                                            &arena);
        qlinear::Device reference;  // qlinear's own workers, for the check
        const Model on_host = build(host, w_up, w_down, w_head);
        const Model on_ref = build(reference, w_up, w_down, w_head);
        std::printf("packed weights in host memory: %zu bytes in %zu blocks\n",
                    arena.live_bytes.load(), arena.blocks.load());

        for (int f = 0; f < 30; f++) {
            const std::size_t rows = 1 + static_cast<std::size_t>(f % 8) * 5;  // 1..36 agents
            std::vector<float> x = weights(rows * 256, 100 + f);
            for (auto& v : x) v *= 20;
            std::vector<float> a = frame(on_host, x, rows), b = frame(on_ref, x, rows);
            if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * 4) != 0)
                mismatches++;
        }
        tasks = jobs.tasks_run();
    }  // layers, devices and the job system are gone here
    std::printf("30 frames, %llu kernel tasks run by the host job system, %d mismatching frames\n",
                static_cast<unsigned long long>(tasks), mismatches);
    std::printf("host memory after shutdown: %zu bytes in %zu blocks (peak %zu)\n",
                arena.live_bytes.load(), arena.blocks.load(), arena.peak_bytes.load());
    if (mismatches != 0 || tasks == 0 || arena.live_bytes.load() != 0 || arena.blocks.load() != 0) {
        std::fprintf(stderr, "FAIL\n");
        return 1;
    }
    std::printf("engine host: bit-identical to the default device\n");
    return 0;
}
