#include "correlate/pattern.h"

#include <algorithm>
#include <cstring>

namespace vigil::correlate {
namespace {

char foldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Length of the UTF-8 character that starts at text[pos], clamped to the text. A stray
// continuation or invalid lead byte counts as one character of one byte.
size_t utf8Length(std::string_view text, size_t pos) {
  auto lead = static_cast<unsigned char>(text[pos]);
  size_t len = 1;
  if (lead >= 0xF0 && lead < 0xF8) {
    len = 4;
  } else if (lead >= 0xE0) {
    len = lead < 0xF0 ? 3 : 1;
  } else if (lead >= 0xC0) {
    len = 2;
  }
  return std::min(len, text.size() - pos);
}

// Length of the dash at text[pos] for the windash modifier, or 0 when there is none.
// The multi-byte dashes are U+2013 (en dash), U+2014 (em dash) and U+2015 (horizontal bar).
size_t dashLength(std::string_view text, size_t pos) {
  char c = text[pos];
  if (c == '-' || c == '/') return 1;
  if (text.size() - pos >= 3 && text[pos] == '\xE2' && text[pos + 1] == '\x80' &&
      (text[pos + 2] == '\x93' || text[pos + 2] == '\x94' || text[pos + 2] == '\x95')) {
    return 3;
  }
  return 0;
}

}  // namespace

void SigmaPattern::push(Token kind, char byte) {
  // Consecutive stars match the same texts as one star.
  if (kind == Token::kStar && !tokens_.empty() && tokens_.back() == Token::kStar) return;
  tokens_.push_back(kind);
  bytes_.push_back(kind == Token::kByte && !cased_ ? foldAscii(byte) : byte);
}

SigmaPattern SigmaPattern::compile(std::string_view value, PatternAnchor anchor, bool cased,
                                   bool windash) {
  SigmaPattern pattern;
  pattern.cased_ = cased;
  if (anchor == PatternAnchor::kContains || anchor == PatternAnchor::kEndsWith) {
    pattern.push(Token::kStar, 0);
  }
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\\') {
      // Only `\*`, `\?` and `\\` are escapes; any other backslash stays literal.
      bool escape = i + 1 < value.size() &&
                    (value[i + 1] == '*' || value[i + 1] == '?' || value[i + 1] == '\\');
      if (escape) ++i;
      pattern.push(Token::kByte, value[i]);
    } else if (c == '*') {
      pattern.push(Token::kStar, 0);
    } else if (c == '?') {
      pattern.push(Token::kOne, 0);
    } else if (windash && (c == '-' || c == '/')) {
      pattern.push(Token::kDash, 0);
    } else if (windash && dashLength(value, i) == 3) {
      pattern.push(Token::kDash, 0);
      i += 2;
    } else {
      pattern.push(Token::kByte, c);
    }
  }
  if (anchor == PatternAnchor::kContains || anchor == PatternAnchor::kStartsWith) {
    pattern.push(Token::kStar, 0);
  }
  pattern.classify();
  return pattern;
}

void SigmaPattern::classify() {
  size_t first = 0;
  size_t last = tokens_.size();
  bool leading_star = first < last && tokens_[first] == Token::kStar;
  if (leading_star) ++first;
  bool trailing_star = first < last && tokens_[last - 1] == Token::kStar;
  if (trailing_star) --last;
  literal_.clear();
  for (size_t i = first; i < last; ++i) {
    if (tokens_[i] != Token::kByte) {
      shape_ = Shape::kGeneral;
      literal_.clear();
      return;
    }
    literal_ += bytes_[i];
  }
  if (leading_star && trailing_star) {
    shape_ = Shape::kInfix;
  } else if (leading_star) {
    shape_ = Shape::kSuffix;
  } else if (trailing_star) {
    shape_ = Shape::kPrefix;
  } else {
    shape_ = Shape::kEquals;
  }
}

bool SigmaPattern::equalsAt(std::string_view text, size_t pos) const {
  for (size_t i = 0; i < literal_.size(); ++i) {
    char c = cased_ ? text[pos + i] : foldAscii(text[pos + i]);
    if (c != literal_[i]) return false;
  }
  return true;
}

bool SigmaPattern::findInfix(std::string_view text) const {
  const size_t n = literal_.size();
  if (n == 0) return true;
  if (cased_) return text.find(literal_) != std::string_view::npos;
  // Only positions that start with the first literal byte (in either case) can match.
  // memchr finds them fast when that byte is not a letter, as in '\' or '.'.
  const char first = literal_[0];
  const bool letter = first >= 'a' && first <= 'z';
  const char upper = letter ? static_cast<char>(first - 'a' + 'A') : first;
  size_t pos = 0;
  while (pos + n <= text.size()) {
    if (!letter) {
      const void* found = std::memchr(text.data() + pos, first, text.size() - n + 1 - pos);
      if (found == nullptr) return false;
      pos = static_cast<size_t>(static_cast<const char*>(found) - text.data());
    } else if (text[pos] != first && text[pos] != upper) {
      ++pos;
      continue;
    }
    if (equalsAt(text, pos)) return true;
    ++pos;
  }
  return false;
}

SigmaPattern SigmaPattern::literal(std::string_view literal, PatternAnchor anchor) {
  SigmaPattern pattern;
  pattern.cased_ = true;
  if (anchor == PatternAnchor::kContains || anchor == PatternAnchor::kEndsWith) {
    pattern.push(Token::kStar, 0);
  }
  for (char c : literal) pattern.push(Token::kByte, c);
  if (anchor == PatternAnchor::kContains || anchor == PatternAnchor::kStartsWith) {
    pattern.push(Token::kStar, 0);
  }
  pattern.classify();
  return pattern;
}

bool SigmaPattern::matches(std::string_view text) const {
  const size_t n = literal_.size();
  switch (shape_) {
    case Shape::kEquals:
      return text.size() == n && equalsAt(text, 0);
    case Shape::kPrefix:
      return text.size() >= n && equalsAt(text, 0);
    case Shape::kSuffix:
      return text.size() >= n && equalsAt(text, text.size() - n);
    case Shape::kInfix:
      return findInfix(text);
    case Shape::kGeneral:
      break;
  }

  // Greedy matching with one backtrack point: each non-star token matches at most one
  // way at a given text position, so retrying only from the last star is complete.
  const size_t count = tokens_.size();
  size_t t = 0;
  size_t p = 0;
  size_t star_token = count;  // none yet
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < count) {
      size_t step = 0;
      switch (tokens_[p]) {
        case Token::kStar:
          star_token = p++;
          star_text = t;
          continue;
        case Token::kByte: {
          char c = cased_ ? text[t] : foldAscii(text[t]);
          step = c == bytes_[p] ? 1 : 0;
          break;
        }
        case Token::kOne:
          step = utf8Length(text, t);
          break;
        case Token::kDash:
          step = dashLength(text, t);
          break;
      }
      if (step > 0) {
        t += step;
        ++p;
        continue;
      }
    }
    if (star_token == count) return false;
    p = star_token + 1;
    t = ++star_text;
  }
  while (p < count && tokens_[p] == Token::kStar) ++p;
  return p == count;
}

std::string SigmaPattern::requiredLiteral() const {
  // Consecutive byte tokens match consecutive text bytes, so each run of them is a
  // substring of every match. Stars, `?` and windash dashes end a run.
  size_t best_start = 0;
  size_t best_length = 0;
  size_t start = 0;
  for (size_t i = 0; i <= tokens_.size(); ++i) {
    if (i < tokens_.size() && tokens_[i] == Token::kByte) continue;
    if (i - start > best_length) {
      best_start = start;
      best_length = i - start;
    }
    start = i + 1;
  }
  return bytes_.substr(best_start, best_length);
}

std::string SigmaPattern::toString() const {
  std::string out;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    switch (tokens_[i]) {
      case Token::kStar:
        out += '*';
        break;
      case Token::kOne:
        out += '?';
        break;
      case Token::kDash:
        out += '-';
        break;
      case Token::kByte:
        if (bytes_[i] == '*' || bytes_[i] == '?' || bytes_[i] == '\\') out += '\\';
        out += bytes_[i];
        break;
    }
  }
  return out;
}

}  // namespace vigil::correlate
