// Debian's libsqlite3-dev: the library GRDB (and so DepotStore) links on Linux.
#include <sqlite3.h>
