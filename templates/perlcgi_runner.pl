# stackato-local's CGI runner for `framework: perlcgi` (what `$STACKATO_UWSGI` runs here).
#
# The platform served perlcgi apps with uWSGI's CGI plugin; this runner takes the same
# options (`--http-socket HOST:PORT`, `--chdir`, `--cgi [MOUNT=]DIR`, `--cgi-index`,
# `--cgi-allowed-ext`, `--cgi-helper EXT=CMD`, `--check-static DIR`, `--static-map URL=DIR`),
# ignores uWSGI's process options (`--master`, `--processes`, …) and warns about the others.
# Each request is served in a forked child that runs the script with the CGI/1.1 environment
# (RFC 3875): the request body on its stdin, its stdout parsed for `Status:`/`Location:`.
# Core Perl only (IO::Socket::INET, POSIX, File::Temp).
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();
use File::Temp ();

my %FLAGS = map { $_ => 1 } qw(master enable-threads die-on-term need-app lazy-apps
  single-interpreter vacuum honour-stdin thunder-lock);
my ($listen, $chdir, @cgi, @index, @allowed, %helper, @static, @map);
while (@ARGV) {
    my $a = shift @ARGV;
    my ($name, $value) = $a =~ /^--?([\w-]+)(?:=(.*))?$/s or do {
        warn "perlcgi runner: ignored argument '$a'\n";
        next;
    };
    if ($FLAGS{$name}) { next }
    $value = shift @ARGV if !defined $value && @ARGV && $ARGV[0] !~ /^--?[\w-]/;
    $value = '' unless defined $value;
    if    ($name eq 'http-socket' || $name eq 'http') { $listen = $value }
    elsif ($name eq 'chdir')           { $chdir = $value }
    elsif ($name eq 'cgi')             { push @cgi, $value }
    elsif ($name eq 'cgi-index')       { push @index, $value }
    elsif ($name eq 'cgi-allowed-ext') { push @allowed, $value }
    elsif ($name eq 'cgi-helper') {
        my ($ext, $cmd) = split /=/, $value, 2;
        $helper{$ext} = $cmd if defined $cmd;
    }
    elsif ($name eq 'check-static') { push @static, $value }
    elsif ($name eq 'static-map') {
        my ($url, $dir) = split /=/, $value, 2;
        push @map, [$url, $dir] if defined $dir;
    }
    elsif ($name =~ /^(?:processes|workers|threads|plugin|plugins|callable|pythonpath|die-on-term|harakiri|buffer-size|post-buffering)$/) { }
    else { warn "perlcgi runner: option --$name is not understood here; ignored\n" }
}
die "perlcgi runner: no --http-socket HOST:PORT given\n" unless $listen;
if (defined $chdir) { chdir $chdir or die "perlcgi runner: cannot chdir to $chdir: $!\n" }
@cgi = ('.') unless @cgi;
@index = ('index.cgi', 'index.pl') unless @index;
my @mounts = map { m{^(/[^=]*)=(.+)$} ? [$1 =~ s{/+$}{}r, $2] : ['', $_] } @cgi;

my ($host, $port) = $listen =~ /^(.*):(\d+)$/ or die "perlcgi runner: bad address '$listen'\n";
$host = '0.0.0.0' if $host eq '';
my $server = IO::Socket::INET->new(LocalAddr => $host, LocalPort => $port, Listen => 64,
    ReuseAddr => 1, Proto => 'tcp') or die "perlcgi runner: cannot listen on $listen: $!\n";
$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$| = 1;
print "perlcgi runner: serving CGI scripts of @{[map { $_->[1] } @mounts]} on http://$listen/\n";

while (1) {
    my $c = $server->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $c; next }
    if ($pid) { close $c; next }
    close $server;
    $SIG{CHLD} = 'DEFAULT';
    eval { serve($c) };
    warn "perlcgi runner: $@" if $@;
    close $c;
    POSIX::_exit(0);
}

sub respond {
    my ($c, $status, $headers, $body) = @_;
    print $c "HTTP/1.0 $status\r\n";
    print $c "$_->[0]: $_->[1]\r\n" for @$headers;
    print $c "Content-Length: " . length($body) . "\r\n"
      unless grep { lc $_->[0] eq 'content-length' } @$headers;
    print $c "Connection: close\r\n\r\n", $body;
}

sub error { my ($c, $s) = @_; respond($c, $s, [['Content-Type', 'text/plain']], "$s\n") }

sub static {
    my ($c, $file) = @_;
    open my $fh, '<:raw', $file or return error($c, '403 Forbidden');
    local $/;
    my $body = <$fh>;
    my %types = (html => 'text/html', htm => 'text/html', css => 'text/css',
        js => 'application/javascript', png => 'image/png', jpg => 'image/jpeg',
        gif => 'image/gif', txt => 'text/plain', json => 'application/json');
    my ($ext) = $file =~ /\.(\w+)$/;
    respond($c, '200 OK', [['Content-Type', $types{lc($ext // '')} // 'application/octet-stream']], $body);
}

sub allowed {
    my ($file) = @_;
    return 1 unless @allowed;
    for my $e (@allowed) { return 1 if substr($file, -length $e) eq $e }
    return 0;
}

sub serve {
    my ($c) = @_;
    local $/ = "\n";
    my $line = <$c> // return;
    my ($method, $uri, $proto) = $line =~ /^(\S+) (\S+)(?: (HTTP\/\d\.\d))?\r?\n$/
      or return error($c, '400 Bad Request');
    my (%h, $n);
    while (defined(my $l = <$c>)) {
        last if $l =~ /^\r?\n$/;
        return error($c, '431 Request Header Fields Too Large') if ++$n > 200;
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\r?\n$/ or next;
        $k = uc $k; $k =~ tr/-/_/;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    my ($path, $query) = split /\?/, $uri, 2;
    $query //= '';
    $path =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return error($c, '400 Bad Request') if $path !~ m{^/} || $path =~ m{(?:^|/)\.\.(?:/|$)};

    for my $m (@map) {
        my ($url, $dir) = @$m;
        if (index($path, $url) == 0 && -f $dir . substr($path, length $url)) {
            return static($c, $dir . substr($path, length $url));
        }
    }
    for my $dir (@static) {
        return static($c, "$dir$path") if -f "$dir$path";
    }

    # Find the script: the longest leading part of the path that is a file under a mount.
    my ($script, $script_name, $path_info);
    for my $m (sort { length $b->[0] <=> length $a->[0] } @mounts) {
        my ($mount, $dir) = @$m;
        next unless $path eq $mount || index($path, "$mount/") == 0 || $mount eq '';
        my @parts = grep { length } split m{/}, substr($path, length $mount);
        my $at = $dir;
        my $i = 0;
        while ($i < @parts && -d "$at/$parts[$i]") { $at .= "/$parts[$i]"; $i++ }
        if ($i < @parts && -f "$at/$parts[$i]") {
            $script = "$at/$parts[$i]";
            $script_name = join '/', $mount, @parts[0 .. $i];
            $path_info = join '', map { "/$_" } @parts[$i + 1 .. $#parts];
        } elsif ($i == @parts) {
            my ($ix) = grep { -f "$at/$_" } @index;
            next unless defined $ix;
            $script = "$at/$ix";
            $script_name = join '/', $mount, @parts, $ix;
            $path_info = '';
        }
        last if defined $script;
    }
    return error($c, '404 Not Found') unless defined $script;
    return static($c, $script) unless allowed($script);

    my $len = $h{CONTENT_LENGTH} // 0;
    return error($c, '400 Bad Request') if $len !~ /^\d+$/;
    my $body = '';
    while (length $body < $len) {
        my $got = read $c, $body, $len - length $body, length $body;
        last unless $got;
    }
    my $in = File::Temp->new;
    binmode $in;
    print $in $body;
    close $in;

    my %env = (
        GATEWAY_INTERFACE => 'CGI/1.1',
        SERVER_SOFTWARE   => 'stackato-local-perlcgi',
        SERVER_NAME       => $host,
        SERVER_PORT       => $port,
        SERVER_PROTOCOL   => $proto // 'HTTP/1.0',
        REQUEST_METHOD    => $method,
        REQUEST_URI       => $uri,
        QUERY_STRING      => $query,
        SCRIPT_NAME       => $script_name,
        SCRIPT_FILENAME   => $script,
        PATH_INFO         => $path_info,
        DOCUMENT_ROOT     => $mounts[0][1],
        REMOTE_ADDR       => $c->peerhost // '',
        REMOTE_PORT       => $c->peerport // '',
    );
    $env{CONTENT_LENGTH} = $len if $len;
    $env{CONTENT_TYPE} = delete $h{CONTENT_TYPE} if exists $h{CONTENT_TYPE};
    delete $h{CONTENT_LENGTH};
    $env{"HTTP_$_"} = $h{$_} for keys %h;

    my ($ext) = $script =~ /(\.[^.\/]+)$/;
    my @cmd = defined $ext && $helper{$ext} ? (split(' ', $helper{$ext}), $script)
      : -x $script ? ($script)
      : ($^X, $script);
    my ($dir) = $script =~ m{^(.*)/};
    my $pid = open my $out, '-|';
    return error($c, '500 Internal Server Error') unless defined $pid;
    if (!$pid) {
        @ENV{keys %env} = values %env;
        open STDIN, '<', $in->filename or POSIX::_exit(127);
        chdir $dir if defined $dir;
        exec { $cmd[0] } @cmd or do { warn "perlcgi runner: cannot run $script: $!\n"; POSIX::_exit(127) };
    }
    binmode $out;
    local $/;
    my $all = <$out> // '';
    close $out;
    my ($head, $rest) = split /\r?\n\r?\n/, $all, 2;
    if (!defined $rest) {
        warn "perlcgi runner: $script printed no CGI header (exit status " . ($? >> 8) . ")\n";
        return error($c, '500 Internal Server Error');
    }
    my ($status, @headers) = ('200 OK');
    for my $l (split /\r?\n/, $head) {
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*)$/ or next;
        if (lc $k eq 'status') { $status = $v; next }
        $status = '302 Found' if lc $k eq 'location' && $status eq '200 OK';
        push @headers, [$k, $v];
    }
    print STDOUT "perlcgi runner: $method $uri -> $status\n";
    respond($c, $status, \@headers, $rest);
}
