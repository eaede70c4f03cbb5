mod c_host;
mod common;
mod domains;
