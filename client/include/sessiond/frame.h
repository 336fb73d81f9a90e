// The frame codec shared by the client protocol and the peer protocol.
//
// A frame is a 4-byte big-endian length of what follows (the flags byte plus the payload), a
// 1-byte flags field, then the payload. Flag bit 0 (kFrameLz4) says the payload is an lz4 block
// preceded by its uncompressed size as a 4-byte big-endian number. Other flag bits are reserved
// and must be zero. See docs/protocol.md.
#ifndef SESSIOND_FRAME_H_
#define SESSIOND_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sessiond/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace sessiond {

inline constexpr size_t kFrameHeaderBytes = 5;  // length (4) + flags (1)
inline constexpr uint8_t kFrameLz4 = 0x01;
inline constexpr size_t kDefaultMaxFrameBytes = 16u << 20;
// Payloads at least this large are offered to lz4; a block is kept only if it is smaller.
inline constexpr size_t kDefaultCompressThreshold = 8u << 10;

struct FrameOptions {
  // Largest accepted value of the length field, and largest decompressed payload.
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // 0 disables compression on send.
  size_t compress_threshold = kDefaultCompressThreshold;
};

// Appends one frame carrying `payload` to `out`, compressing it when options allow and it helps.
// Returns TOO_LARGE (and appends nothing) when the frame would exceed options.max_frame_bytes.
Status AppendFrame(std::string& out, std::string_view payload, const FrameOptions& options);

// Serializes `message` and appends it as one frame to `out`, as AppendFrame.
Status AppendMessageFrame(std::string& out, const google::protobuf::MessageLite& message,
                          const FrameOptions& options);

// Incremental decoder: feed it whatever bytes arrived, take out whole frames.
//
// The length field is checked against the limit as soon as its 4 bytes are present, so an
// oversized frame is refused before its body is read. After an error the decoder stays failed:
// the stream has lost framing and the connection must be closed (after answering, if it can).
class FrameDecoder {
 public:
  enum class State { kNeedMore, kFrame, kError };

  explicit FrameDecoder(FrameOptions options = {}) : options_(options) {}

  // Appends received bytes.
  void Feed(std::string_view bytes) {
    if (consumed_ == buffer_.size()) {
      buffer_.clear();
      consumed_ = 0;
    }
    buffer_.append(bytes);
  }

  // Takes the next whole frame. On kFrame, *payload holds the (decompressed) payload. On
  // kError, error() says why (TOO_LARGE for an oversized length, INVALID_ARGUMENT otherwise).
  State Next(std::string* payload);
  // As Next, without copying: on kFrame, *payload views the frame in the decoder's buffer (or,
  // for a compressed frame, the decoder's own decompressed copy), valid until the next call to
  // Feed, Next or NextView.
  State NextView(std::string_view* payload);

  const Status& error() const { return error_; }
  // Bytes held but not yet returned as frames.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  FrameOptions options_;
  std::string buffer_;
  std::string decompressed_;  // NextView's payload of a compressed frame
  size_t consumed_ = 0;       // bytes at the front of buffer_ already returned as frames
  Status error_;
};

}  // namespace sessiond

#endif  // SESSIOND_FRAME_H_
