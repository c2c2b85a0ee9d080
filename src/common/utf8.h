// Text from the network, made safe to echo: UTF-8 validity checks and a
// printable, length-capped copy cut on character boundaries. Pure functions;
// thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sandman {

// Length of the well-formed UTF-8 character starting at s[i] (1 to 4), or 0
// when the bytes there are not one. i must be < s.size().
size_t utf8SequenceLength(std::string_view s, size_t i);

// True when s is well-formed UTF-8 (no overlongs, surrogates or code points
// past U+10FFFF), the form JSON and our logs require.
bool isValidUtf8(std::string_view s);

// A copy of s for error messages and logs: control characters and invalid
// bytes become '?', and at most max_chars characters are kept (never half of
// a multi-byte character), with "..." when something was cut.
std::string printableExcerpt(std::string_view s, size_t max_chars);

}  // namespace sandman
