#pragma once
// The library version (CMakeLists.txt's project(VERSION) must say the same; tests/cpp/pipeline checks it).
namespace lamia {
inline constexpr char kLamiaVersion[] = "0.1.0";
}  // namespace lamia
