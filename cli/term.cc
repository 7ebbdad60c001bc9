#include "cli/term.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace stsguard {

Color color_choice(StreamKind stream, const char* term, const char* no_color) {
    if (stream != StreamKind::terminal || no_color != nullptr) return Color::off;
    if (term == nullptr || *term == '\0' || std::strcmp(term, "dumb") == 0) return Color::off;
    return Color::on;
}

Color color_for_fd(int fd) {
    return color_choice(isatty(fd) == 1 ? StreamKind::terminal : StreamKind::other,
                        std::getenv("TERM"), std::getenv("NO_COLOR"));
}

std::string paint(Color color, Hue hue, std::string_view text) {
    if (color == Color::off) return std::string(text);
    const char* sgr = "";
    switch (hue) {
        case Hue::red:
            sgr = "\033[1;31m";
            break;
        case Hue::yellow:
            sgr = "\033[1;33m";
            break;
        case Hue::green:
            sgr = "\033[1;32m";
            break;
        case Hue::cyan:
            sgr = "\033[36m";
            break;
        case Hue::bold:
            sgr = "\033[1m";
            break;
    }
    return sgr + std::string(text) + "\033[0m";
}

}  // namespace stsguard
