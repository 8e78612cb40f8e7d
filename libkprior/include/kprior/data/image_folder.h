#pragma once
// Image datasets stored as class-per-folder trees of JPEG files, the layout of ImageNet and
// TinyImageNet:
//   root/train/<class>/**/*.JPEG   (TinyImageNet's original: train/<wnid>/images/*.JPEG)
//   root/val/<class>/**/*.JPEG     (ImageNet's val sorted into class folders), or
//   root/val/images/*.JPEG + root/val/val_annotations.txt (TinyImageNet's original val:
//                                   lines "file<TAB>wnid<TAB>..." )
// Class ids are the positions of the training folders' names in sorted order (for ImageNet
// and TinyImageNet the sorted WordNet ids, as torchvision's ImageFolder numbers them).
#include <cstdint>
#include <string>
#include <vector>

namespace kprior::data {

/// A list of image files with their class ids.
struct ImageList {
  std::vector<std::string> classes;  // class id -> folder name (e.g. a WordNet id)
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  int64_t size() const { return static_cast<int64_t>(files.size()); }
  /// The files whose class is one of `classes`, in their order.
  ImageList with_classes(const std::vector<int64_t>& keep) const;
  /// A seeded random `per_class` files of each class (all of a class with fewer; all when
  /// per_class is 0), kept in the list's order. The draw of a class depends only on its
  /// folder name and its files, so it is the same in every run, whatever other classes exist.
  ImageList sample_per_class(int64_t per_class) const;
};

/// Scans `dir`/<class>/ (recursively, files ending in .jpeg/.jpg/.png in any case), classes
/// sorted by name, files sorted by path. With `classes` given, folder names are looked up
/// there (a val tree numbered like its train tree) and an unknown folder is a FileError.
/// Throws FileError for a missing folder, no class folders, or a class folder without images.
ImageList scan_image_folder(const std::string& dir, const std::vector<std::string>* classes = nullptr);

/// TinyImageNet's original val layout: `val_dir`/images/*.JPEG labelled by
/// `val_dir`/val_annotations.txt. FileError for a missing file, a malformed line, an unknown
/// class or an image named in the annotations that does not exist.
ImageList scan_tinyimagenet_val(const std::string& val_dir, const std::vector<std::string>& classes);

/// train and val (test) lists of `root` (layouts above); val uses train's class numbering.
struct ImageTree {
  ImageList train;
  ImageList val;
};
ImageTree scan_image_tree(const std::string& root);

}  // namespace kprior::data
