// JSON string text as nlohmann's serializer writes it with ensure_ascii off and
// error_handler_t::replace, without building a nlohmann::json value. The alert writers
// use it on the alert path, where a JSON tree per alert cost more than the alert's
// case filing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or values past
// U+10FFFF).
bool validUtf8(std::string_view text);

// Appends `text` as a JSON string: quotes, backslashes and control characters escaped,
// the rest as is. Invalid UTF-8 (rare) goes through nlohmann's serializer, which puts
// U+FFFD where it finds an invalid sequence, so the bytes match a dump() of the value.
void appendJsonString(std::string_view text, std::string& out);

// As appendJsonString(), for `text` the caller has checked with validUtf8().
void appendValidJsonString(std::string_view text, std::string& out);

// Appends `texts` as a JSON array of strings.
void appendJsonStringArray(const std::vector<std::string>& texts, std::string& out);

// Appends `value` as nlohmann writes a floating-point number: the shortest text that
// reads back as it, "null" when it is not finite.
void appendJsonDouble(double value, std::string& out);

// Appends `value` in decimal.
void appendJsonInteger(int64_t value, std::string& out);
void appendJsonInteger(uint64_t value, std::string& out);

// Appends `"key":` for a key the caller knows needs no escaping (ASCII letters, digits and
// '_').
void appendJsonKey(std::string_view key, std::string& out);

}  // namespace vigil
