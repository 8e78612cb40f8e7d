#include "kprior/data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "kprior/core/error.h"
#include "kprior/core/fingerprint.h"
#include "kprior/core/random.h"

namespace kprior::data {
namespace {

namespace fs = std::filesystem;

std::string lower_extension(const fs::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// The images a tree may hold: JPEG, and PNG as torchvision's ImageFolder reads it too (the
// decoder tells them apart by their signature, whatever the name says).
bool is_image_name(const fs::path& p) {
  const auto ext = lower_extension(p);
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

// The other formats torchvision's ImageFolder reads (its IMG_EXTENSIONS). Skipping them, as
// other files are skipped, would silently train on part of a class, so they are refused.
bool is_unread_image_name(const fs::path& p) {
  const auto ext = lower_extension(p);
  for (const char* other : {".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}) {
    if (ext == other) return true;
  }
  return false;
}

std::vector<std::string> images_under(const fs::path& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (is_unread_image_name(e.path())) {
      throw FileError(e.path().string(), "is an image format kprior does not read (only JPEG and PNG); convert the "
                                         "tree's images, e.g. with ImageMagick's mogrify -format png");
    }
    if (is_image_name(e.path())) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Whether `dir` itself (not its subfolders) holds image files.
bool holds_images_directly(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && is_image_name(e.path())) return true;
  }
  return false;
}

}  // namespace

ImageList ImageList::with_classes(const std::vector<int64_t>& keep) const {
  const std::set<int64_t> wanted(keep.begin(), keep.end());
  ImageList out{classes, {}, {}};
  for (size_t i = 0; i < files.size(); ++i) {
    if (wanted.count(labels[i]) != 0) {
      out.files.push_back(files[i]);
      out.labels.push_back(labels[i]);
    }
  }
  return out;
}

ImageList ImageList::sample_per_class(int64_t per_class) const {
  if (per_class < 0) throw UsageError("sample_per_class: per_class must be >= 0, got " + std::to_string(per_class));
  if (per_class == 0) return *this;
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < files.size(); ++i) by_class[labels[i]].push_back(i);
  std::vector<bool> keep(files.size(), false);
  for (const auto& [c, items] : by_class) {
    const auto n = static_cast<int64_t>(items.size());
    const std::string name = c >= 0 && c < static_cast<int64_t>(classes.size()) ? classes[static_cast<size_t>(c)]
                                                                                : std::to_string(c);
    const auto order = random_permutation(n, mix_seed(0x5A3B1E, Fingerprint().add(name).value()));
    for (int64_t k = 0; k < std::min(n, per_class); ++k) keep[items[static_cast<size_t>(order[static_cast<size_t>(k)])]] = true;
  }
  ImageList out{classes, {}, {}};
  for (size_t i = 0; i < files.size(); ++i) {
    if (!keep[i]) continue;
    out.files.push_back(files[i]);
    out.labels.push_back(labels[i]);
  }
  return out;
}

ImageList scan_image_folder(const std::string& dir, const std::vector<std::string>* classes) {
  if (!fs::is_directory(dir)) throw FileError(dir, "not found (expected a folder with one subfolder per class)");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) throw FileError(dir, "has no class folders");
  ImageList list;
  list.classes = classes != nullptr ? *classes : names;
  std::map<std::string, int64_t> id;
  for (size_t c = 0; c < list.classes.size(); ++c) id[list.classes[c]] = static_cast<int64_t>(c);
  for (const auto& name : names) {
    const auto it = id.find(name);
    if (it == id.end()) throw FileError((fs::path(dir) / name).string(), "is not a class of the training set");
    const auto files = images_under(fs::path(dir) / name);
    if (files.empty()) throw FileError((fs::path(dir) / name).string(), "has no images (.JPEG, .jpg or .png)");
    for (const auto& f : files) {
      list.files.push_back(f);
      list.labels.push_back(it->second);
    }
  }
  return list;
}

ImageList scan_tinyimagenet_val(const std::string& val_dir, const std::vector<std::string>& classes) {
  const auto annotations = (fs::path(val_dir) / "val_annotations.txt").string();
  if (fs::is_directory(annotations)) throw FileError(annotations, "is a folder, not TinyImageNet's label list");
  std::ifstream in(annotations);
  if (!in) throw FileError(annotations, "not found");
  std::map<std::string, int64_t> id;
  std::map<std::string, int64_t> line_of;  // an image listed twice would be tested twice
  for (size_t c = 0; c < classes.size(); ++c) id[classes[c]] = static_cast<int64_t>(c);
  ImageList list{classes, {}, {}};
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line == "\r") continue;
    std::stringstream fields(line);
    std::string file, wnid;
    if (!std::getline(fields, file, '\t') || !std::getline(fields, wnid, '\t') || file.empty() || wnid.empty()) {
      throw FileError(annotations, "line " + std::to_string(n) + " is not 'file<TAB>class<TAB>...'");
    }
    if (!wnid.empty() && wnid.back() == '\r') wnid.pop_back();
    const auto it = id.find(wnid);
    if (it == id.end()) {
      throw FileError(annotations, "line " + std::to_string(n) + ": class '" + wnid + "' is not a training class");
    }
    if (const auto [at, fresh] = line_of.emplace(file, n); !fresh) {
      throw FileError(annotations, "line " + std::to_string(n) + ": " + file + " is listed twice (also line " +
                                       std::to_string(at->second) + ")");
    }
    const auto path = (fs::path(val_dir) / "images" / file).string();
    if (!fs::exists(path)) throw FileError(annotations, "line " + std::to_string(n) + ": " + path + " does not exist");
    list.files.push_back(path);
    list.labels.push_back(it->second);
  }
  if (list.files.empty()) throw FileError(annotations, "lists no images");
  return list;
}

ImageTree scan_image_tree(const std::string& root) {
  ImageTree tree;
  tree.train = scan_image_folder((fs::path(root) / "train").string());
  const auto val = fs::path(root) / "val";
  if (!fs::is_directory(val)) {
    throw FileError(val.string(), "not found: the validation images, either TinyImageNet's images/ with "
                                  "val_annotations.txt or one subfolder per class");
  }
  if (fs::exists(val / "val_annotations.txt")) {
    tree.val = scan_tinyimagenet_val(val.string(), tree.train.classes);
  } else if (fs::is_directory(val / "images") &&
             std::find(tree.train.classes.begin(), tree.train.classes.end(), "images") == tree.train.classes.end()) {
    throw FileError((val / "val_annotations.txt").string(),
                    "not found: TinyImageNet's val/images/ needs it to label its images (or sort val/ into class "
                    "folders)");
  } else if (fs::is_directory(val) && holds_images_directly(val)) {
    // ImageNet's validation set as distributed: 50,000 files in one folder, labels apart.
    throw FileError(val.string(), "holds images directly: sort them into one folder per class (the training "
                                  "set's folder names), the ImageFolder layout; the labels come with the dataset "
                                  "(ILSVRC2012 devkit)");
  } else {
    tree.val = scan_image_folder(val.string(), &tree.train.classes);
  }
  return tree;
}

}  // namespace kprior::data
