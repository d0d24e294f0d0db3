// The VM's value: a 16-byte tagged union of null, bool, int64, double, string and list.
//
// Ownership: a string Value is a view. It points into the program's constant pool, into
// the run heap of the Vm that produced it, or (only for values a host passes in) into
// memory the host keeps alive for the call. A list Value points to a List in the run
// heap. Values from a run stay valid until the next run(), resume() or reset() on the same
// Vm. Lists are shared by reference: MOVE copies the reference, APPEND is seen by every
// register that holds the list.
#pragma once

#include <cstdint>
#include <string_view>

namespace vigil::playbook_vm {

// Numeric values are part of the module format (constant kinds) and of TypeMask bits.
enum class ValueType : uint8_t { kNull, kBool, kInt, kDouble, kString, kList };

std::string_view valueTypeName(ValueType type);

class Value;

// A growable list in the run heap. `items` has room for `capacity` values.
struct List {
  Value* items;
  uint32_t size;
  uint32_t capacity;
};

class Value {
 public:
  constexpr Value() : type_(ValueType::kNull), length_(0), int_(0) {}

  static constexpr Value null() { return Value(); }
  static constexpr Value boolean(bool b) {
    Value v;
    v.type_ = ValueType::kBool;
    v.bool_ = b;
    return v;
  }
  static constexpr Value integer(int64_t i) {
    Value v;
    v.type_ = ValueType::kInt;
    v.int_ = i;
    return v;
  }
  static constexpr Value real(double d) {
    Value v;
    v.type_ = ValueType::kDouble;
    v.double_ = d;
    return v;
  }
  // `text` must outlive every use of the Value (see the ownership note above).
  // Strings longer than 4 GiB - 1 bytes cannot be represented; callers check first.
  static constexpr Value string(std::string_view text) {
    Value v;
    v.type_ = ValueType::kString;
    v.length_ = static_cast<uint32_t>(text.size());
    v.chars_ = text.data();
    return v;
  }
  static constexpr Value list(List* l) {
    Value v;
    v.type_ = ValueType::kList;
    v.list_ = l;
    return v;
  }

  constexpr ValueType type() const { return type_; }
  constexpr bool isNull() const { return type_ == ValueType::kNull; }
  constexpr bool isBool() const { return type_ == ValueType::kBool; }
  constexpr bool isInt() const { return type_ == ValueType::kInt; }
  constexpr bool isDouble() const { return type_ == ValueType::kDouble; }
  constexpr bool isNumber() const { return isInt() || isDouble(); }
  constexpr bool isString() const { return type_ == ValueType::kString; }
  constexpr bool isList() const { return type_ == ValueType::kList; }

  // Accessors require the matching type and do not check it.
  constexpr bool asBool() const { return bool_; }
  constexpr int64_t asInt() const { return int_; }
  constexpr double asDouble() const { return double_; }
  // Returns the number as a double; requires isNumber().
  constexpr double toDouble() const { return isInt() ? static_cast<double>(int_) : double_; }
  constexpr std::string_view asString() const { return {chars_, length_}; }
  constexpr List* asList() const { return list_; }

 private:
  ValueType type_;
  uint32_t length_;  // string length in bytes
  union {
    bool bool_;
    int64_t int_;
    double double_;
    const char* chars_;
    List* list_;
  };
};

static_assert(sizeof(Value) == 16, "Value must stay two words");

// EQ semantics: numbers compare by value (1 == 1.0), strings by bytes, lists by identity,
// values of different kinds are unequal. NaN is unequal to everything, as in IEEE 754.
bool valuesEqual(const Value& a, const Value& b);

}  // namespace vigil::playbook_vm
