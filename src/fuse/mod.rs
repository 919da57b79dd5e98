//! The fuser adapter: translates kernel requests into `fs` calls and replies. Nothing else.
