//! The filesystem core: inodes, directories, reads, writes, rename, xattrs. No fuser, reqwest or quick-xml here.
