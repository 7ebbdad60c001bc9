// term.h - colour for human-readable output, only where it can be seen.
//
// Colour is used only when the stream is a terminal, TERM names a terminal
// that is not "dumb", and NO_COLOR is not set (https://no-color.org; any
// value, even empty, turns colour off).  Pipes, files and CI logs get
// plain text, so scripts can grep the output.
//
// Failures: none.  Limits: ANSI SGR sequences only.
#pragma once

#include <string>
#include <string_view>

namespace stsguard {

enum class Color { off, on };
enum class Hue { red, yellow, green, cyan, bold };
enum class StreamKind { terminal, other };

// The decision, without touching the environment (testable).
Color color_choice(StreamKind stream, const char* term, const char* no_color);

// The decision for a file descriptor (1 = stdout) and the real environment.
Color color_for_fd(int fd);

// text wrapped in the SGR sequence for hue when color is on, else text.
std::string paint(Color color, Hue hue, std::string_view text);

}  // namespace stsguard
