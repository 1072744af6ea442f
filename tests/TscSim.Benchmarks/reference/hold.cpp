// Bare C++ reference for TscSim's hold-model benchmark (issue 19): a std::priority_queue of
// (time, sequence) pairs, no slot table, no fingerprint, no handler dispatch. Same model as
// src/TscSim.Core/Engine/HoldModel.cs: N events pending; each executed event schedules one new
// event at now + U[0, 2 us) in picoseconds, drawn with xoshiro256** and Lemire's unbiased
// multiply-shift (as RandomStream.NextUInt64(bound)). Ties are broken by insertion sequence,
// as in the simulator.
//
// Usage: hold N EVENTS_PER_ROUND ROUNDS
// Prints one line per timed round: "N events seconds" (after a warm-up of max(EVENTS/2, 4N)).
// Build: ./build.sh (g++ -O2). `tscsim bench` runs it when it finds the binary.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

namespace {

struct Xoshiro256 {
    uint64_t s[4];
    explicit Xoshiro256(uint64_t seed) {
        // SplitMix64 seeding (Vigna's recommendation).
        for (auto& w : s) {
            uint64_t z = (seed += 0x9E3779B97F4A7C15ULL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            w = z ^ (z >> 31);
        }
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
        s[2] ^= t; s[3] = rotl(s[3], 45);
        return result;
    }
    // Lemire, "Fast random integer generation in an interval", ACM TOMACS 2019.
    uint64_t below(uint64_t bound) {
        unsigned __int128 m = (unsigned __int128)next() * bound;
        uint64_t low = (uint64_t)m;
        if (low < bound) {
            uint64_t threshold = (0 - bound) % bound;
            while (low < threshold) {
                m = (unsigned __int128)next() * bound;
                low = (uint64_t)m;
            }
        }
        return (uint64_t)(m >> 64);
    }
};

using Entry = std::pair<int64_t, uint64_t>; // (time ps, insertion sequence)
using Queue = std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>>;

constexpr uint64_t kBoundPs = 2'000'000; // U[0, 2 us) = mean 1 us

int64_t g_sink = 0;

void run(Queue& q, Xoshiro256& rng, uint64_t& seq, int64_t events) {
    for (int64_t i = 0; i < events; i++) {
        int64_t now = q.top().first;
        q.pop();
        q.emplace(now + (int64_t)rng.below(kBoundPs), seq++);
    }
    g_sink += q.top().first;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s N EVENTS_PER_ROUND ROUNDS\n", argv[0]);
        return 2;
    }
    long n = std::atol(argv[1]);
    long long events = std::atoll(argv[2]);
    int rounds = std::atoi(argv[3]);
    if (n < 1 || events < 1 || rounds < 1) {
        std::fprintf(stderr, "N, EVENTS_PER_ROUND and ROUNDS must be positive\n");
        return 2;
    }
    Xoshiro256 rng(1);
    uint64_t seq = 0;
    std::vector<Entry> storage;
    storage.reserve((size_t)n + 1);
    Queue q(std::greater<Entry>(), std::move(storage));
    for (long i = 0; i < n; i++) q.emplace((int64_t)rng.below(kBoundPs), seq++);
    long long warm = events / 2 > 4LL * n ? events / 2 : 4LL * n;
    run(q, rng, seq, warm);
    for (int r = 0; r < rounds; r++) {
        auto start = std::chrono::steady_clock::now();
        run(q, rng, seq, events);
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%ld %lld %.9f\n", n, events, seconds);
    }
    std::fflush(stdout);
    return g_sink == 42 ? 1 : 0;
}
