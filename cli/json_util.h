// json_util.h - JSON output shared by every stsguard command.
//
// All JSON is produced with nlohmann-json, never by hand.  Text that came
// from the network (TXT records, policy bodies, certificate names) may be
// any bytes; dump() replaces invalid UTF-8 so output is always valid JSON.
//
// Failures: none.  Limits: none.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "policy-cache/finding.h"

namespace stsguard {

// [{"severity", "code", "message"[, "line"]}]; "line" only when non-zero.
nlohmann::json findings_json(const Findings& findings);

// Pretty (indent 2) when requested, with invalid UTF-8 replaced.
enum class JsonStyle { pretty, compact };
std::string dump_json(const nlohmann::json& j, JsonStyle style = JsonStyle::pretty);

}  // namespace stsguard
