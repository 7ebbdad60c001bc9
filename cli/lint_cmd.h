// lint_cmd.h - `stsguard lint txt|policy|mx`: offline RFC 8461 checks.
//
// Runs the pure model (sts_txt, sts_policy, mx_match) on text given on
// the command line or in a file and prints the verdict and every finding,
// for people (one line per finding, colour on a terminal) or for scripts
// (--json).  The functions below do everything but argument parsing, so
// tests call them without a process.
//
// Exit status (ExitCode): 0 valid/match without warnings, 1 valid with
// warnings, 2 invalid/no-policy/nomatch, 3 usage or input error (a missing
// file).  Limits: a policy input is read up to kMaxLintInput + 1 bytes;
// more is reported as too large without reading the rest.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cli/term.h"

namespace stsguard {

enum class OutputFormat { human, json };

inline constexpr std::size_t kMaxLintInput = std::size_t{1024} * 1024;

// records: the text of each TXT RR at _mta-sts.<domain>; together the set.
int lint_txt(const std::vector<std::string>& records, OutputFormat format, std::ostream& out,
             Color color = Color::off);

// body: the raw policy bytes.
int lint_policy(std::string_view body, OutputFormat format, std::ostream& out,
                Color color = Color::off);

// path: a file, or "-" for in; read in binary.  A file that cannot be read
// is reported on err and gives 3.
int lint_policy_input(const std::string& path, std::istream& in, OutputFormat format,
                      std::ostream& out, std::ostream& err, Color color = Color::off);

int lint_mx(std::string_view pattern, std::string_view host, OutputFormat format, std::ostream& out,
            Color color = Color::off);

}  // namespace stsguard
