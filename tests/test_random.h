// test_random.h - a small, seeded pseudo-random source for property tests.
//
// Property tests compare a fast path with the full check over many
// generated inputs; a fixed seed keeps every run (and every failure
// message) the same.  Not for anything but tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stsguard_test {

class TestRandom {
public:
    explicit TestRandom(std::uint32_t seed) : state_(seed) {}

    // Numerical Recipes' LCG; the high bits are the better ones.
    std::uint32_t next() {
        state_ = state_ * 1664525u + 1013904223u;
        return state_ >> 8;
    }
    std::uint32_t below(std::uint32_t n) { return next() % n; }

    // 1..max_len pieces, each one of `pieces` picked at random.
    template <class Pieces>
    std::string string(const Pieces& pieces, std::size_t max_len) {
        std::string s;
        const std::size_t len = 1 + below(static_cast<std::uint32_t>(max_len));
        for (std::size_t i = 0; i < len; ++i)
            s += pieces[below(static_cast<std::uint32_t>(std::size(pieces)))];
        return s;
    }

private:
    std::uint32_t state_;
};

}  // namespace stsguard_test
