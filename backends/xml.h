// The XML answers of S3 (ListObjectsV2, errors, multipart uploads) and WebDAV (PROPFIND), read
// with libxml2 into a small tree. Namespaces are dropped: elements go by their local names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"

namespace dupfs {

struct XmlElement {
  std::string name;  // local name ("Key", "href")
  std::string text;  // the text directly inside, entities resolved
  std::vector<XmlElement> children;

  // The first child named `name`, or null.
  const XmlElement* child(std::string_view child_name) const;
  // Its text, or "" when there is no such child.
  std::string child_text(std::string_view child_name) const;
};

// The document element of `xml`. kCorruption naming `where` when it is not well-formed. No
// network access and no external entities.
Result<XmlElement> parse_xml(std::string_view xml, std::string_view where);

}  // namespace dupfs
