// JSON string literals, for the hand-written JSON of the admin endpoint and the cluster view
// (small, fixed shapes where a JSON library would cost more than it saves).
#ifndef SESSIOND_REPLICATION_JSON_STRING_H_
#define SESSIOND_REPLICATION_JSON_STRING_H_

#include <string>
#include <string_view>

namespace sessiond {

// Appends `text` as a JSON string literal, quotes included: quote, backslash and control
// characters escaped; other bytes (UTF-8 included) as they are.
void AppendJsonString(std::string& out, std::string_view text);

// The same, as a new string.
std::string JsonString(std::string_view text);

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_JSON_STRING_H_
