//! The weft command-line tool and daemons
