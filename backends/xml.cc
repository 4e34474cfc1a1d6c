#include "backends/xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <memory>

namespace dupfs {
namespace {

XmlElement convert(const xmlNode* node) {
  XmlElement e;
  e.name = reinterpret_cast<const char*>(node->name);
  for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      e.children.push_back(convert(c));
    } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
               c->content != nullptr) {
      e.text += reinterpret_cast<const char*>(c->content);
    }
  }
  return e;
}

}  // namespace

const XmlElement* XmlElement::child(std::string_view child_name) const {
  for (const auto& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::child_text(std::string_view child_name) const {
  const XmlElement* c = child(child_name);
  return c != nullptr ? c->text : std::string();
}

Result<XmlElement> parse_xml(std::string_view xml, std::string_view where) {
  if (xml.size() > (size_t{1} << 30)) {
    return error(ErrorKind::kCorruption, "{}: the server's answer is too large", where);
  }
  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
      xmlReadMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
      xmlFreeDoc);
  const xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  if (root == nullptr) {
    return error(ErrorKind::kCorruption, "{}: the server's answer is not XML: '{}'", where,
                 xml.substr(0, 200));
  }
  return convert(root);
}

}  // namespace dupfs
