// curl_handles.h - RAII owners for libcurl handles.
//
// A CURL easy handle and a curl_slist are owned from the moment they are
// created, so every early return of the fetcher frees them.  Failures:
// slist_append() reports allocation failure; nothing else fails.
// Limits: none.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace stsguard {

struct CurlEasyFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlSlistFree {
    void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyFree>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistFree>;

// curl_slist_append returns a new head or nullptr (leaving the old list
// intact); this keeps ownership in `list` in both cases.
inline bool slist_append(CurlSlistPtr& list, const char* item) {
    curl_slist* head = curl_slist_append(list.get(), item);
    if (head == nullptr) {
        return false;
    }
    (void)list.release();
    list.reset(head);
    return true;
}

}  // namespace stsguard
