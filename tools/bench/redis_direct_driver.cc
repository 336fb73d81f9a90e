#include "tools/bench/redis_direct_driver.h"

#include <utility>

#include "tools/bench/redis_target.h"

namespace sessiond::bench {

RedisDirectDriver::RedisDirectDriver(std::string redis_url, int app_servers,
                                     WorkloadOptions options) {
  Result<SessionTargetFactory> factory = RedisTarget::Factory(
      redis_url, app_servers, options.max_idle_s, options.request_deadline, options.seed);
  if (!factory.ok()) {
    url_status_ = factory.status();
    return;
  }
  driver_ = std::make_unique<WorkloadDriver>(app_servers, std::move(*factory), std::move(options));
}

Status RedisDirectDriver::Populate(RunProgress& progress) {
  if (!driver_) return url_status_;
  return driver_->Populate(progress);
}

Result<WorkloadResult> RedisDirectDriver::Run(RunProgress& progress) {
  if (!driver_) return url_status_;
  return driver_->Run(progress);
}

LostWriteLedger::Verdict RedisDirectDriver::VerifyWrites(const LostWriteLedger& ledger,
                                                         const std::vector<bool>& alive_nodes) {
  if (!driver_) return {};
  return driver_->VerifyWrites(ledger, alive_nodes);
}

}  // namespace sessiond::bench
