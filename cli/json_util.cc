#include "cli/json_util.h"

namespace stsguard {

nlohmann::json findings_json(const Findings& findings) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : findings) {
        nlohmann::json j = {{"severity", severity_name(f.severity)}, {"code", f.code}, {"message", f.message}};
        if (f.line != 0) j["line"] = f.line;
        out.push_back(std::move(j));
    }
    return out;
}

std::string dump_json(const nlohmann::json& j, JsonStyle style) {
    return j.dump(style == JsonStyle::pretty ? 2 : -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace stsguard
