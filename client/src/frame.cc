#include "sessiond/frame.h"

#include <google/protobuf/message_lite.h>
#include <lz4.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace sessiond {
namespace {

constexpr size_t kLengthBytes = 4;
constexpr size_t kRawSizeBytes = 4;  // uncompressed size ahead of an lz4 block

void PutBigEndian32(char* out, uint32_t value) {
  out[0] = static_cast<char>(value >> 24);
  out[1] = static_cast<char>(value >> 16);
  out[2] = static_cast<char>(value >> 8);
  out[3] = static_cast<char>(value);
}

uint32_t GetBigEndian32(const char* in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The length field is 32 bits whatever the configured limit says.
size_t EffectiveLimit(const FrameOptions& options) {
  return std::min<size_t>(options.max_frame_bytes, std::numeric_limits<uint32_t>::max());
}

Status PayloadTooLarge(size_t bytes, size_t limit) {
  return TooLarge("the message is " + std::to_string(bytes) + " bytes, over the frame limit of " +
                  std::to_string(limit) +
                  " bytes; send less in one message or raise the limit (--max-frame-bytes)");
}

// Appends a frame header and a body of `size` bytes to `out`, returning where the body starts.
char* AppendPlainFrame(std::string& out, size_t size) {
  const size_t start = out.size();
  out.resize(start + kFrameHeaderBytes + size);
  char* header = out.data() + start;
  PutBigEndian32(header, static_cast<uint32_t>(size + 1));
  header[kLengthBytes] = 0;
  return header + kFrameHeaderBytes;
}

// Appends `payload` as an lz4 frame when that makes it smaller; returns false (and leaves `out`
// as it was) otherwise.
bool AppendCompressedFrame(std::string& out, std::string_view payload, size_t limit) {
  if (payload.size() > LZ4_MAX_INPUT_SIZE) return false;
  const int source_size = static_cast<int>(payload.size());
  const int bound = LZ4_compressBound(source_size);
  const size_t start = out.size();
  out.resize(start + kFrameHeaderBytes + kRawSizeBytes + bound);
  char* header = out.data() + start;
  const int compressed = LZ4_compress_default(
      payload.data(), header + kFrameHeaderBytes + kRawSizeBytes, source_size, bound);
  const size_t body = kRawSizeBytes + static_cast<size_t>(compressed);
  if (compressed <= 0 || body >= payload.size() || body + 1 > limit) {
    out.resize(start);
    return false;
  }
  PutBigEndian32(header, static_cast<uint32_t>(body + 1));
  header[kLengthBytes] = static_cast<char>(kFrameLz4);
  PutBigEndian32(header + kFrameHeaderBytes, static_cast<uint32_t>(payload.size()));
  out.resize(start + kFrameHeaderBytes + body);
  return true;
}

bool WantsCompression(size_t payload_size, const FrameOptions& options) {
  return options.compress_threshold != 0 && payload_size >= options.compress_threshold;
}

}  // namespace

Status AppendFrame(std::string& out, std::string_view payload, const FrameOptions& options) {
  const size_t limit = EffectiveLimit(options);
  // The receiver bounds the decompressed size too, so compression cannot smuggle a payload in.
  if (payload.size() > limit) return PayloadTooLarge(payload.size(), limit);
  if (WantsCompression(payload.size(), options) && AppendCompressedFrame(out, payload, limit)) {
    return Status::Ok();
  }
  if (payload.size() + 1 > limit) return PayloadTooLarge(payload.size(), limit);
  char* body = AppendPlainFrame(out, payload.size());
  if (!payload.empty()) std::memcpy(body, payload.data(), payload.size());
  return Status::Ok();
}

Status AppendMessageFrame(std::string& out, const google::protobuf::MessageLite& message,
                          const FrameOptions& options) {
  const size_t size = message.ByteSizeLong();
  if (WantsCompression(size, options)) {
    std::string payload;
    message.SerializeToString(&payload);
    return AppendFrame(out, payload, options);
  }
  // The common small message is serialized straight into the output, without a copy.
  const size_t limit = EffectiveLimit(options);
  if (size + 1 > limit) return PayloadTooLarge(size, limit);
  char* body = AppendPlainFrame(out, size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(body));
  return Status::Ok();
}

FrameDecoder::State FrameDecoder::Next(std::string* payload) {
  std::string_view view;
  const State state = NextView(&view);
  if (state == State::kFrame) {
    if (view.data() == decompressed_.data()) {
      payload->swap(decompressed_);
    } else {
      payload->assign(view);
    }
  }
  return state;
}

FrameDecoder::State FrameDecoder::NextView(std::string_view* payload) {
  if (!error_.ok()) return State::kError;
  // The last compressed frame's payload is no longer viewed: a large one is not kept for the
  // connection's life (a link may see one big frame and then only small ones).
  constexpr size_t kKeptDecompressedBytes = 1 << 20;
  if (decompressed_.capacity() > kKeptDecompressedBytes) std::string().swap(decompressed_);
  // Called only when the rest is an incomplete frame, so each byte moves at most once: after the
  // move consumed_ stays 0 until that frame is returned. Compacting here rather than after every
  // frame keeps a batch of frames from costing a move per frame.
  const auto need_more = [this] {
    if (consumed_ != 0) {
      buffer_.erase(0, consumed_);
      consumed_ = 0;
    }
    return State::kNeedMore;
  };
  const auto fail = [this](Status error) {
    error_ = std::move(error);
    // The stream has lost framing: nothing buffered can be used any more.
    buffer_.clear();
    buffer_.shrink_to_fit();
    consumed_ = 0;
    return State::kError;
  };
  const size_t available = buffer_.size() - consumed_;
  if (available < kLengthBytes) {
    return need_more();
  }
  const char* frame = buffer_.data() + consumed_;
  const size_t length = GetBigEndian32(frame);
  const size_t limit = EffectiveLimit(options_);
  if (length > limit) {
    return fail(TooLarge("a frame of " + std::to_string(length) +
                         " bytes arrived, over the frame limit of " + std::to_string(limit) +
                         " bytes; send smaller messages or raise the limit (--max-frame-bytes)"));
  }
  if (length == 0) {
    return fail(InvalidArgument(
        "a frame arrived with length 0 and no flags byte; the sender does not speak the sessiond "
        "framing (see docs/protocol.md)"));
  }
  if (available - kLengthBytes < length) {
    return need_more();
  }

  const auto flags = static_cast<uint8_t>(frame[kLengthBytes]);
  const char* body = frame + kFrameHeaderBytes;
  const size_t body_size = length - 1;
  if ((flags & ~kFrameLz4) != 0) {
    return fail(InvalidArgument("a frame arrived with reserved flag bits set (flags " +
                                std::to_string(flags) +
                                "); the sender speaks a newer or different protocol"));
  }
  if ((flags & kFrameLz4) != 0) {
    if (body_size < kRawSizeBytes) {
      return fail(InvalidArgument(
          "a compressed frame is too short to hold its uncompressed size; the sender is broken"));
    }
    const size_t raw_size = GetBigEndian32(body);
    if (raw_size > limit) {
      return fail(InvalidArgument("a compressed frame declares " + std::to_string(raw_size) +
                                  " uncompressed bytes, over the frame limit of " +
                                  std::to_string(limit) + " bytes; it was refused unread"));
    }
    const size_t block_size = body_size - kRawSizeBytes;
    if (block_size > LZ4_MAX_INPUT_SIZE) {
      return fail(InvalidArgument("a compressed frame's lz4 block is larger than lz4 allows"));
    }
    decompressed_.resize(raw_size);
    const int written =
        LZ4_decompress_safe(body + kRawSizeBytes, decompressed_.data(),
                            static_cast<int>(block_size), static_cast<int>(raw_size));
    if (written < 0 || static_cast<size_t>(written) != raw_size) {
      decompressed_.clear();
      return fail(InvalidArgument(
          "a compressed frame holds a corrupt lz4 block or lies about its uncompressed size; "
          "the sender is broken or the stream was damaged"));
    }
    *payload = decompressed_;
  } else {
    *payload = std::string_view(body, body_size);
  }

  // A buffer read to its end is emptied by the next Feed or Next, not here: *payload views it.
  consumed_ += kLengthBytes + length;
  return State::kFrame;
}

}  // namespace sessiond
