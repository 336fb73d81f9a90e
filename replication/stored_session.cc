#include "replication/stored_session.h"

namespace sessiond {

// Memory per session is a benchmark target: growing this struct past 72 bytes moves every
// session into glibc's next chunk size (96 bytes). Grow it on purpose or not at all.
static_assert(sizeof(void*) != 8 || sizeof(StoredSession) <= 72,
              "StoredSession grew past 72 bytes; see the memory notes in session_store.h");

v1::Session StoredSession::ToProto() const {
  v1::Session s;
  s.set_id(id());
  s.set_created_ms(created_ms_);
  s.set_last_access_ms(last_access_ms_);
  s.set_max_idle_s(max_idle_s_);
  s.set_max_lifetime_s(max_lifetime_s_);
  if (principal_ != nullptr) s.set_principal(*principal_);
  s.set_version(version_);
  auto& attributes = *s.mutable_attributes();
  for (const AttributeBlock::Attribute& a : attributes_) {
    attributes[std::string(a.name)] = std::string(a.value);
  }
  return s;
}

}  // namespace sessiond
