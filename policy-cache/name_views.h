// name_views.h - a short list of names (MX patterns, MX host names) viewed,
// not owned: string_views into a cache record's stored bytes or into a
// record's strings, which must outlive the list.
//
// Why: the serve hot path answers from the bytes LMDB hands out inside a
// read transaction; copying each name into a std::string first cost more
// than the decision itself.  Up to kInline names are held without
// allocating (nearly every policy and MX set has one to four); more spill
// into a vector, whose storage is then kept for the next record.
//
// Pure: no I/O.  Failures: none.  Limits: none (the record format caps a
// list at 65535 entries).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace stsguard {

class NameViews {
public:
    NameViews() = default;
    // Copies would point into the same storage as the original: allowed,
    // since the views never own anything.
    NameViews(const NameViews&) = default;
    NameViews& operator=(const NameViews&) = default;

    void clear() {
        n_ = 0;
        more_.clear();
    }
    void push_back(std::string_view name) {
        if (n_ < kInline) [[likely]] {
            inline_[n_++] = name;
            return;
        }
        spill(name);
    }
    // Views of every string in names (which must outlive this list).
    void assign(const std::vector<std::string>& names) {
        clear();
        for (const auto& n : names) push_back(n);
    }

    const std::string_view* begin() const { return n_ <= kInline ? inline_.data() : more_.data(); }
    const std::string_view* end() const { return begin() + n_; }
    std::size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    std::string_view operator[](std::size_t i) const { return begin()[i]; }

private:
    [[gnu::noinline]] void spill(std::string_view name) {
        if (n_ == kInline) more_.assign(inline_.begin(), inline_.end());
        more_.push_back(name);
        ++n_;
    }

    static constexpr std::size_t kInline = 8;
    std::array<std::string_view, kInline> inline_{};
    std::vector<std::string_view> more_;  // all of them, once there are more than kInline
    std::size_t n_ = 0;
};

}  // namespace stsguard
