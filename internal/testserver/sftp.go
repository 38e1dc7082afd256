package testserver

// SFTPAddr returns host:port of the server's SFTP listener on 127.0.0.1;
// it stays the same across Restart.
func (s *Server) SFTPAddr() string { return s.sftpAddr }
