#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace vigil {

void initLogging(const std::string& level) {
  spdlog::drop("vigil");
  auto logger = spdlog::stderr_logger_mt("vigil");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace vigil
