#include "sessiond/frame.h"

#include <gtest/gtest.h>
#include <lz4.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sessiond/v1/sessiond.pb.h"

namespace sessiond {
namespace {

std::string BigEndian32(uint32_t value) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(value >> 24);
  out[1] = static_cast<char>(value >> 16);
  out[2] = static_cast<char>(value >> 8);
  out[3] = static_cast<char>(value);
  return out;
}

// A frame written by hand, so that the decoder is tested against the documented layout rather
// than against the encoder.
std::string RawFrame(uint8_t flags, const std::string& body) {
  return BigEndian32(static_cast<uint32_t>(body.size() + 1)) + static_cast<char>(flags) + body;
}

std::string Lz4Body(const std::string& payload, uint32_t declared_size) {
  std::string block(LZ4_compressBound(static_cast<int>(payload.size())), '\0');
  const int n = LZ4_compress_default(payload.data(), block.data(), static_cast<int>(payload.size()),
                                     static_cast<int>(block.size()));
  block.resize(n);
  return BigEndian32(declared_size) + block;
}

std::string Compressible(size_t size) {
  std::string out;
  while (out.size() < size) out += "attribute=value;";
  out.resize(size);
  return out;
}

std::string Incompressible(size_t size) {
  std::mt19937 random(42);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

// Decodes one frame from `bytes`, which must hold exactly one.
std::string DecodeOne(const std::string& bytes, FrameOptions options = {}) {
  FrameDecoder decoder(options);
  decoder.Feed(bytes);
  std::string payload;
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame) << decoder.error().ToString();
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  return payload;
}

Status DecodeError(const std::string& bytes, FrameOptions options = {}) {
  FrameDecoder decoder(options);
  decoder.Feed(bytes);
  std::string payload;
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kError);
  // The decoder stays failed: framing is lost for good.
  decoder.Feed(RawFrame(0, "x"));
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kError);
  return decoder.error();
}

TEST(FrameTest, SmallPayloadRoundTripsUncompressed) {
  std::string out;
  ASSERT_TRUE(AppendFrame(out, "hello", {}).ok());
  EXPECT_EQ(out, RawFrame(0, "hello"));
  EXPECT_EQ(DecodeOne(out), "hello");
}

TEST(FrameTest, EmptyPayloadRoundTrips) {
  std::string out;
  ASSERT_TRUE(AppendFrame(out, "", {}).ok());
  EXPECT_EQ(out, BigEndian32(1) + '\0');
  EXPECT_EQ(DecodeOne(out), "");
}

TEST(FrameTest, LargeCompressiblePayloadTravelsAsLz4) {
  const std::string payload = Compressible(1 << 20);
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, {}).ok());
  EXPECT_LT(out.size(), payload.size() / 4);
  EXPECT_EQ(static_cast<uint8_t>(out[4]), kFrameLz4);
  EXPECT_EQ(DecodeOne(out), payload);
}

TEST(FrameTest, IncompressiblePayloadTravelsPlain) {
  const std::string payload = Incompressible(64 << 10);
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, {}).ok());
  EXPECT_EQ(static_cast<uint8_t>(out[4]), 0);
  EXPECT_EQ(out.size(), kFrameHeaderBytes + payload.size());
  EXPECT_EQ(DecodeOne(out), payload);
}

TEST(FrameTest, PayloadBelowThresholdIsNotCompressed) {
  const std::string payload = Compressible(kDefaultCompressThreshold - 1);
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, {}).ok());
  EXPECT_EQ(static_cast<uint8_t>(out[4]), 0);

  out.clear();
  ASSERT_TRUE(AppendFrame(out, payload + "x", {}).ok());
  EXPECT_EQ(static_cast<uint8_t>(out[4]), kFrameLz4);
}

TEST(FrameTest, ZeroThresholdDisablesCompression) {
  const std::string payload = Compressible(1 << 20);
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, {.compress_threshold = 0}).ok());
  EXPECT_EQ(static_cast<uint8_t>(out[4]), 0);
  EXPECT_EQ(DecodeOne(out), payload);
}

TEST(FrameTest, FrameExactlyAtTheLimitIsAccepted) {
  const FrameOptions options{.max_frame_bytes = 1000, .compress_threshold = 0};
  const std::string payload = Incompressible(999);  // length field = 1 + 999 = the limit
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, options).ok());
  EXPECT_EQ(out.substr(0, 4), BigEndian32(1000));
  EXPECT_EQ(DecodeOne(out, options), payload);

  out.clear();
  const Status too_large = AppendFrame(out, Incompressible(1000), options);
  EXPECT_EQ(too_large.code(), v1::TOO_LARGE);
  EXPECT_TRUE(out.empty()) << "nothing is appended on error";
}

TEST(FrameTest, CompressionLetsAPayloadAtTheLimitThrough) {
  // Decompressed payloads may be as large as the limit; only the length field counts the header.
  const FrameOptions options{.max_frame_bytes = 1 << 16, .compress_threshold = 1024};
  const std::string payload = Compressible(1 << 16);
  std::string out;
  ASSERT_TRUE(AppendFrame(out, payload, options).ok());
  EXPECT_EQ(DecodeOne(out, options), payload);

  EXPECT_EQ(AppendFrame(out, Compressible((1 << 16) + 1), options).code(), v1::TOO_LARGE);
}

TEST(FrameTest, MessageFrameRoundTrips) {
  v1::ClientRequest request;
  request.set_request_id(42);
  request.mutable_get()->set_id("abc");
  std::string out;
  ASSERT_TRUE(AppendMessageFrame(out, request, {}).ok());
  v1::ClientRequest decoded;
  ASSERT_TRUE(decoded.ParseFromString(DecodeOne(out)));
  EXPECT_EQ(decoded.request_id(), 42u);
  EXPECT_EQ(decoded.get().id(), "abc");
}

TEST(FrameTest, LargeMessageFrameIsCompressed) {
  v1::ClientRequest request;
  request.set_request_id(7);
  (*request.mutable_create()->mutable_attributes())["cart"] = Compressible(100 << 10);
  std::string out;
  ASSERT_TRUE(AppendMessageFrame(out, request, {}).ok());
  EXPECT_EQ(static_cast<uint8_t>(out[4]), kFrameLz4);
  v1::ClientRequest decoded;
  ASSERT_TRUE(decoded.ParseFromString(DecodeOne(out)));
  EXPECT_EQ(decoded.create().attributes().at("cart"), Compressible(100 << 10));
}

TEST(FrameTest, OversizedMessageIsRefused) {
  v1::ClientRequest request;
  (*request.mutable_create()->mutable_attributes())["cart"] = Incompressible(2000);
  std::string out = "keep";
  const Status status =
      AppendMessageFrame(out, request, {.max_frame_bytes = 1000, .compress_threshold = 0});
  EXPECT_EQ(status.code(), v1::TOO_LARGE);
  EXPECT_EQ(out, "keep");
}

TEST(FrameTest, AppendsAfterExistingBytes) {
  std::string out;
  ASSERT_TRUE(AppendFrame(out, "one", {}).ok());
  ASSERT_TRUE(AppendFrame(out, "two", {}).ok());
  EXPECT_EQ(out, RawFrame(0, "one") + RawFrame(0, "two"));
}

TEST(FrameDecoderTest, FedOneByteAtATime) {
  std::string stream;
  const std::vector<std::string> payloads = {"a", "", Compressible(50 << 10), "last"};
  for (const auto& payload : payloads) ASSERT_TRUE(AppendFrame(stream, payload, {}).ok());

  FrameDecoder decoder;
  std::vector<std::string> decoded;
  std::string payload;
  for (char byte : stream) {
    decoder.Feed(std::string_view(&byte, 1));
    for (;;) {
      const auto state = decoder.Next(&payload);
      ASSERT_NE(state, FrameDecoder::State::kError) << decoder.error().ToString();
      if (state == FrameDecoder::State::kNeedMore) break;
      decoded.push_back(payload);
    }
  }
  EXPECT_EQ(decoded, payloads);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoderTest, ManyFramesInOneFeed) {
  std::string stream;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(AppendFrame(stream, std::to_string(i), {}).ok());
  // A partial frame at the end stays buffered until the rest arrives.
  std::string tail;
  ASSERT_TRUE(AppendFrame(tail, "tail", {}).ok());
  stream += tail.substr(0, 6);

  FrameDecoder decoder;
  decoder.Feed(stream);
  std::string payload;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame);
    EXPECT_EQ(payload, std::to_string(i));
  }
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  EXPECT_EQ(decoder.buffered(), 6u);
  decoder.Feed(tail.substr(6));
  ASSERT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame);
  EXPECT_EQ(payload, "tail");
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoderTest, NextViewReturnsPlainAndCompressedPayloadsInPlace) {
  const std::string big = Compressible(64 << 10);
  std::string stream;
  ASSERT_TRUE(AppendFrame(stream, "first", {}).ok());
  ASSERT_TRUE(AppendFrame(stream, big, {}).ok());  // lz4
  ASSERT_TRUE(AppendFrame(stream, "third", {}).ok());
  ASSERT_LT(stream.size(), big.size());

  FrameDecoder decoder;
  decoder.Feed(stream.substr(0, 3));
  std::string_view view;
  EXPECT_EQ(decoder.NextView(&view), FrameDecoder::State::kNeedMore);
  decoder.Feed(stream.substr(3));
  ASSERT_EQ(decoder.NextView(&view), FrameDecoder::State::kFrame);
  EXPECT_EQ(view, "first");
  ASSERT_EQ(decoder.NextView(&view), FrameDecoder::State::kFrame);
  EXPECT_EQ(view, big);
  // Next and NextView interleave on one stream.
  std::string payload;
  ASSERT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame);
  EXPECT_EQ(payload, "third");
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_EQ(decoder.NextView(&view), FrameDecoder::State::kNeedMore);

  // A frame read to the end of the buffer stays viewable until the next Feed.
  std::string one;
  ASSERT_TRUE(AppendFrame(one, "alone", {}).ok());
  decoder.Feed(one);
  ASSERT_EQ(decoder.NextView(&view), FrameDecoder::State::kFrame);
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_EQ(view, "alone");
  decoder.Feed(one);
  ASSERT_EQ(decoder.NextView(&view), FrameDecoder::State::kFrame);
  EXPECT_EQ(view, "alone");
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoderTest, WaitsForTheWholeFrame) {
  const std::string frame = RawFrame(0, "payload");
  FrameDecoder decoder;
  std::string payload;
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  decoder.Feed(frame.substr(0, 3));
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  decoder.Feed(frame.substr(3, 3));
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  EXPECT_EQ(decoder.buffered(), 6u);
  decoder.Feed(frame.substr(6));
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kFrame);
  EXPECT_EQ(payload, "payload");
}

TEST(FrameDecoderTest, OversizedLengthIsRefusedBeforeTheBody) {
  // Only the 4 length bytes are present: the decoder must not wait for 16 MiB to refuse them.
  const Status error = DecodeError(BigEndian32(kDefaultMaxFrameBytes + 1));
  EXPECT_EQ(error.code(), v1::TOO_LARGE);
  EXPECT_NE(error.message().find(std::to_string(kDefaultMaxFrameBytes)), std::string::npos);

  EXPECT_EQ(DecodeError(BigEndian32(0xffffffff)).code(), v1::TOO_LARGE);
  EXPECT_EQ(DecodeError(BigEndian32(101), {.max_frame_bytes = 100}).code(), v1::TOO_LARGE);
}

TEST(FrameDecoderTest, ZeroLengthIsInvalid) {
  EXPECT_EQ(DecodeError(BigEndian32(0)).code(), v1::INVALID_ARGUMENT);
}

TEST(FrameDecoderTest, ReservedFlagBitsAreInvalid) {
  for (int flags : {0x02, 0x80, 0x03, 0xff}) {
    EXPECT_EQ(DecodeError(RawFrame(static_cast<uint8_t>(flags), "x")).code(), v1::INVALID_ARGUMENT)
        << flags;
  }
}

TEST(FrameDecoderTest, GarbageIsRefused) {
  // An HTTP request on the client port: "GET " read as a length is far over the limit.
  EXPECT_EQ(DecodeError("GET / HTTP/1.1\r\nHost: x\r\n\r\n").code(), v1::TOO_LARGE);
  // Small garbage that parses as a length but carries bad flags.
  EXPECT_EQ(DecodeError(std::string("\0\0\0\x02\x7fz", 6)).code(), v1::INVALID_ARGUMENT);
}

TEST(FrameDecoderTest, TruncatedFrameNeedsMore) {
  std::string frame;
  ASSERT_TRUE(AppendFrame(frame, Compressible(20000), {}).ok());
  FrameDecoder decoder;
  decoder.Feed(frame.substr(0, frame.size() - 1));
  std::string payload;
  EXPECT_EQ(decoder.Next(&payload), FrameDecoder::State::kNeedMore);
  EXPECT_EQ(decoder.buffered(), frame.size() - 1);
}

TEST(FrameDecoderTest, CompressedFrameTooShortForItsSizeIsInvalid) {
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, "abc")).code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, "")).code(), v1::INVALID_ARGUMENT);
}

TEST(FrameDecoderTest, CorruptLz4IsInvalid) {
  std::string body = Lz4Body(Compressible(10000), 10000);
  // Overwrite the block (after the size) with bytes that are not a valid lz4 sequence.
  for (size_t i = 4; i < body.size(); ++i) body[i] = static_cast<char>(0xff);
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, body)).code(), v1::INVALID_ARGUMENT);
}

TEST(FrameDecoderTest, Lz4SizeLieIsInvalid) {
  const std::string payload = Compressible(10000);
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, Lz4Body(payload, 9999))).code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, Lz4Body(payload, 10001))).code(), v1::INVALID_ARGUMENT);
  // The honest size decodes.
  EXPECT_EQ(DecodeOne(RawFrame(kFrameLz4, Lz4Body(payload, 10000))), payload);
}

TEST(FrameDecoderTest, DecompressedSizeOverTheLimitIsInvalid) {
  // A small frame that claims to expand past the limit is refused without allocating for it.
  const FrameOptions options{.max_frame_bytes = 1000};
  const Status error = DecodeError(RawFrame(kFrameLz4, Lz4Body(Compressible(2000), 2000)), options);
  EXPECT_EQ(error.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(DecodeError(RawFrame(kFrameLz4, BigEndian32(0xffffffff) + "x")).code(),
            v1::INVALID_ARGUMENT);
}

TEST(FrameDecoderTest, RandomChunksOfManyFramesDecode) {
  std::mt19937 random(7);
  std::vector<std::string> payloads;
  std::string stream;
  for (int i = 0; i < 200; ++i) {
    const size_t size = random() % 3 == 0 ? random() % 40000 : random() % 100;
    payloads.push_back(i % 2 ? Compressible(size) : Incompressible(size));
    ASSERT_TRUE(AppendFrame(stream, payloads.back(), {}).ok());
  }
  FrameDecoder decoder;
  std::vector<std::string> decoded;
  std::string payload;
  for (size_t at = 0; at < stream.size();) {
    const size_t chunk = std::min<size_t>(stream.size() - at, 1 + random() % 5000);
    decoder.Feed(std::string_view(stream).substr(at, chunk));
    at += chunk;
    while (decoder.Next(&payload) == FrameDecoder::State::kFrame) decoded.push_back(payload);
    ASSERT_TRUE(decoder.error().ok()) << decoder.error().ToString();
  }
  EXPECT_EQ(decoded, payloads);
}

}  // namespace
}  // namespace sessiond
