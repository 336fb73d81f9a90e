#include "replication/attribute_block.h"

#include <cstring>

namespace sessiond {
namespace {

uint8_t* PutVarint(uint8_t* out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Decodes a varint the Builder wrote; the block is never read from outside the process, so
// its bytes are trusted.
const uint8_t* GetVarint(const uint8_t* p, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t byte = *p++;
    result |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) break;
  }
  *v = result;
  return p;
}

}  // namespace

AttributeBlock::Iterator::Iterator(const uint8_t* pos, const uint8_t* end) : pos_(pos), end_(end) {
  Decode();
}

void AttributeBlock::Iterator::Decode() {
  if (pos_ == end_) return;
  uint64_t len = 0;
  const uint8_t* p = GetVarint(pos_, &len);
  current_.name = std::string_view(reinterpret_cast<const char*>(p), len);
  p = GetVarint(p + len, &len);
  current_.value = std::string_view(reinterpret_cast<const char*>(p), len);
  next_ = p + len;
}

AttributeBlock::Iterator& AttributeBlock::Iterator::operator++() {
  pos_ = next_;
  Decode();
  return *this;
}

std::string_view AttributeBlock::payload() const {
  if (data_ == nullptr) return {};
  uint64_t len = 0;
  const uint8_t* p = GetVarint(data_.get(), &len);
  return std::string_view(reinterpret_cast<const char*>(p), len);
}

AttributeBlock::Iterator AttributeBlock::begin() const {
  const std::string_view p = payload();
  const auto* start = reinterpret_cast<const uint8_t*>(p.data());
  return Iterator(start, start + p.size());
}

AttributeBlock::Iterator AttributeBlock::end() const {
  const std::string_view p = payload();
  const auto* stop = reinterpret_cast<const uint8_t*>(p.data()) + p.size();
  return Iterator(stop, stop);
}

void AttributeBlock::PrefetchRest() const {
  if (data_ == nullptr) return;
  const std::string_view p = payload();
  for (size_t offset = 128; offset < p.size(); offset += 64) __builtin_prefetch(p.data() + offset);
}

size_t AttributeBlock::count() const {
  size_t n = 0;
  for (auto it = begin(), e = end(); it != e; ++it) ++n;
  return n;
}

size_t AttributeBlock::allocated_bytes() const {
  const std::string_view p = payload();
  return data_ == nullptr ? 0 : VarintLength(p.size()) + p.size();
}

std::optional<std::string_view> AttributeBlock::Find(std::string_view name) const {
  for (const Attribute& a : *this) {
    if (a.name == name) return a.value;
  }
  return std::nullopt;
}

void AttributeBlock::Builder::Add(std::string_view name, std::string_view value) {
  PutVarint(&payload_, name.size());
  payload_.append(name);
  PutVarint(&payload_, value.size());
  payload_.append(value);
  ++count_;
}

AttributeBlock AttributeBlock::Builder::Build() && {
  if (count_ == 0) return AttributeBlock();
  // Exactly the bytes needed: the block is the bulk of a session's memory.
  std::unique_ptr<uint8_t[]> data(new uint8_t[VarintLength(payload_.size()) + payload_.size()]);
  uint8_t* p = PutVarint(data.get(), payload_.size());
  std::memcpy(p, payload_.data(), payload_.size());
  return AttributeBlock(std::move(data));
}

AttributeBlock AttributeBlock::Of(std::span<const Attribute> attributes) {
  if (attributes.empty()) return AttributeBlock();
  size_t payload = 0;
  for (const Attribute& a : attributes) {
    payload +=
        VarintLength(a.name.size()) + a.name.size() + VarintLength(a.value.size()) + a.value.size();
  }
  std::unique_ptr<uint8_t[]> data(new uint8_t[VarintLength(payload) + payload]);
  uint8_t* p = PutVarint(data.get(), payload);
  for (const Attribute& a : attributes) {
    p = PutVarint(p, a.name.size());
    if (!a.name.empty()) std::memcpy(p, a.name.data(), a.name.size());
    p += a.name.size();
    p = PutVarint(p, a.value.size());
    if (!a.value.empty()) std::memcpy(p, a.value.data(), a.value.size());
    p += a.value.size();
  }
  return AttributeBlock(std::move(data));
}

}  // namespace sessiond
