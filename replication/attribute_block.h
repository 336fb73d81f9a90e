// AttributeBlock: a session's attributes (name -> bytes) packed into one heap allocation.
//
// A std::map<std::string, std::string> spends ~100 bytes of nodes and string headers per
// attribute before the data; a session typically holds a handful of small attributes, so the
// store keeps them as length-prefixed pairs in a single buffer and finds a name by a linear
// scan. Changing an attribute re-encodes the block (see Builder), which is cheap for the
// small maps sessions hold and keeps reads allocation-free.
//
// Encoding (private to this class; nothing persists it): varint(payload bytes), then per
// attribute varint(name length), name, varint(value length), value. The delta mode will add a
// per-attribute (Lamport clock, node id) stamp and tombstones here, behind the same interface.
#ifndef SESSIOND_REPLICATION_ATTRIBUTE_BLOCK_H_
#define SESSIOND_REPLICATION_ATTRIBUTE_BLOCK_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sessiond {

class AttributeBlock {
 public:
  struct Attribute {
    std::string_view name;
    std::string_view value;
  };

  // Walks the attributes in the order they were added. Views stay valid while the block lives.
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Attribute;
    using difference_type = std::ptrdiff_t;
    using pointer = const Attribute*;
    using reference = const Attribute&;

    Iterator() = default;
    const Attribute& operator*() const { return current_; }
    const Attribute* operator->() const { return &current_; }
    Iterator& operator++();
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.pos_ == b.pos_; }

   private:
    friend class AttributeBlock;
    Iterator(const uint8_t* pos, const uint8_t* end);
    void Decode();

    const uint8_t* pos_ = nullptr;  // start of the current attribute; == end_ when done
    const uint8_t* end_ = nullptr;
    const uint8_t* next_ = nullptr;
    Attribute current_;
  };

  class Builder;

  // An empty block; holds no allocation.
  AttributeBlock() = default;
  AttributeBlock(AttributeBlock&&) noexcept = default;
  AttributeBlock& operator=(AttributeBlock&&) noexcept = default;
  AttributeBlock(const AttributeBlock&) = delete;
  AttributeBlock& operator=(const AttributeBlock&) = delete;

  // A block holding `attributes` (distinct names), sized once and written in place: one
  // allocation and one copy of each byte, where a Builder grows its buffer as it goes. What a
  // bulk fill (a state transfer) uses.
  static AttributeBlock Of(std::span<const Attribute> attributes);

  bool empty() const { return data_ == nullptr; }
  // Number of attributes. O(attributes).
  size_t count() const;
  // Asks the CPU to fetch the block's first bytes.
  void Prefetch() const {
    if (data_ != nullptr) {
      __builtin_prefetch(data_.get());
      __builtin_prefetch(data_.get() + 64);
    }
  }
  // Asks the CPU to fetch the rest of the block. It reads the block's length, so call it a
  // little after Prefetch(), once the first bytes are at hand: a loop over many blocks (a state
  // transfer's sender) would otherwise wait for memory on every cache line of every block.
  void PrefetchRest() const;
  // Bytes of the heap allocation (0 when empty), for memory accounting.
  size_t allocated_bytes() const;

  // The value of `name`, or nullopt. O(attributes). The view lives as long as the block.
  std::optional<std::string_view> Find(std::string_view name) const;

  Iterator begin() const;
  Iterator end() const;

 private:
  explicit AttributeBlock(std::unique_ptr<uint8_t[]> data) : data_(std::move(data)) {}
  // The encoded attributes, after the length header.
  std::string_view payload() const;

  std::unique_ptr<uint8_t[]> data_;  // nullptr when there are no attributes
};

// Encodes attributes one by one into a new block. Names must be distinct; the caller (the
// store) has already checked them against the limits.
class AttributeBlock::Builder {
 public:
  // Appends one attribute. REQUIRES: `name` not added before.
  void Add(std::string_view name, std::string_view value);
  size_t count() const { return count_; }
  // The block holding every attribute added; empty (no allocation) when none was.
  AttributeBlock Build() &&;

 private:
  std::string payload_;
  size_t count_ = 0;
};

}  // namespace sessiond

#endif  // SESSIOND_REPLICATION_ATTRIBUTE_BLOCK_H_
