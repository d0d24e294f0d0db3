// The text of a yaml-cpp exception for an error message.
#pragma once

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/exceptions.h>

#include <string>

namespace vigil {

// Returns e.msg. For nesting past yaml-cpp's depth limit, where e.msg is only "bad file",
// returns a message with the depth and the fix instead.
inline std::string yamlErrorText(const YAML::Exception& e) {
  if (const auto* deep = dynamic_cast<const YAML::DeepRecursion*>(&e)) {
    return "lists and maps nest " + std::to_string(deep->depth()) +
           " levels deep, past the YAML parser's limit; flatten the document";
  }
  return e.msg;
}

}  // namespace vigil
