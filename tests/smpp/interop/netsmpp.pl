#!/usr/bin/perl
# Net::SMPP (Debian package libnet-smpp-perl) as an independent SMPP 3.4 codec, for
# tests/smpp/test_interop_netsmpp.py.
#
# Reads one JSON object on stdin:
#
#   {"decode": ["<hex frame>", ...],
#    "encode": [{"command": "submit_sm", "seq": 7, "status": 0,
#                "fields": {"esm_class": 4, "source_addr": {"hex": "534d5343"}, ...},
#                "tlvs": [[30, "<hex value>"], ...]}, ...]}
#
# and writes {"decoded": [...], "encoded": ["<hex frame>", ...]} on stdout. A decoded PDU is
# {"command_id", "command_status", "sequence_number", "command": Net::SMPP's name for it,
#  "fields": {name: integer or {"hex": octets}}, "tlvs": {"<tag>": "<hex value>"}}.
# Octet strings travel as hex both ways so no text encoding stands between the two codecs.
#
# Net::SMPP works on a socket; here its object is blessed over a plain file instead, and it
# reads (read_pdu) or writes (its request and response methods) one PDU there.
use strict;
use warnings;

use File::Temp qw(tempfile);
use JSON::PP;
use Net::SMPP;
use Symbol qw(gensym);

# The provider's vendor TLVs, taught to Net::SMPP through the table it keeps for them.
my %VENDOR_TAGS = (
    0x2000 => 'smsc_cost',
    0x2001 => 'smsc_flags',
    0x2002 => 'smsc_parts',
    0x2003 => 'smsc_mccmnc',
    0x2004 => 'smsc_extra_status',
);
while (my ($tag, $name) = each %VENDOR_TAGS) {
    Net::SMPP::param_tab()->{$tag} = { name => $name, technology => 'provider vendor TLV' };
    $Net::SMPP::param_by_name{$name} = $tag;
}

# Mandatory fields Net::SMPP unpacks as integers; every other field is an octet string.
my %INTEGER_FIELDS = map { $_ => 1 } qw(
    interface_version addr_ton addr_npi source_addr_ton source_addr_npi dest_addr_ton
    dest_addr_npi esm_class protocol_id priority_flag registered_delivery
    replace_if_present_flag data_coding sm_default_msg_id message_state error_code
);
my %HEADER_KEYS = map { $_ => 1 } qw(cmd status seq data known_pdu reserved);

sub smpp_over_file {
    my ($mode, $path) = @_;
    my $handle = gensym;
    open($handle, $mode, $path) or die "cannot open $path: $!";
    binmode $handle;
    bless $handle, 'Net::SMPP';
    my $defaults = Net::SMPP::Default();
    ${*$handle}{$_} = $defaults->{$_} for keys %$defaults;
    $handle->set_version(0x34);
    return $handle;
}

sub octets { my ($value) = @_; return defined $value ? { hex => unpack('H*', $value) } : undef }

sub decode_frame {
    my ($hex) = @_;
    my ($tmp, $path) = tempfile(UNLINK => 1);
    binmode $tmp;
    print {$tmp} pack('H*', $hex);
    close $tmp;
    my $smpp = smpp_over_file('<', $path);
    my $pdu = $smpp->read_pdu() or die "Net::SMPP could not read $hex\n";
    close $smpp;

    my %tlvs = map { $_ => unpack('H*', $pdu->{$_}) } grep { /^\d+$/ } keys %$pdu;
    my %fields;
    for my $key (grep { !/^\d+$/ && !$HEADER_KEYS{$_} } keys %$pdu) {
        my $tag = $Net::SMPP::param_by_name{$key};
        next if defined $tag && exists $tlvs{$tag};    # the symbolic name of a TLV
        my $value = $pdu->{$key};
        $fields{$key} = $INTEGER_FIELDS{$key} && defined $value ? 0 + $value : octets($value);
    }
    return {
        command_id      => 0 + $pdu->{cmd},
        command_status  => 0 + $pdu->{status},
        sequence_number => 0 + $pdu->{seq},
        command         => $pdu->explain_cmd(),
        fields          => \%fields,
        tlvs            => \%tlvs,
    };
}

sub encode_request {
    my ($request) = @_;
    my $command = $request->{command};
    my $is_response = $command =~ /_resp$/ || $command eq 'generic_nack';
    my @args = (seq => $request->{seq}, async => 1);
    push @args, status => $request->{status} if $is_response;
    for my $name (sort keys %{ $request->{fields} }) {
        my $value = $request->{fields}{$name};
        push @args, $name => ref $value ? pack('H*', $value->{hex}) : $value;
    }
    for my $tlv (@{ $request->{tlvs} }) {
        my ($tag, $hex) = @$tlv;
        my $known = Net::SMPP::param_tab()->{$tag} or die "Net::SMPP has no name for TLV $tag\n";
        push @args, $known->{name} => pack('H*', $hex);
    }

    my ($tmp, $path) = tempfile(UNLINK => 1);
    close $tmp;
    my $smpp = smpp_over_file('>', $path);
    $smpp->$command(@args);
    close $smpp;
    open(my $written, '<', $path) or die "cannot read $path: $!";
    binmode $written;
    local $/;
    my $frame = <$written>;
    return unpack('H*', $frame);
}

my $input = JSON::PP->new->decode(do { local $/; <STDIN> });
my %output = (
    decoded => [ map { decode_frame($_) } @{ $input->{decode} || [] } ],
    encoded => [ map { encode_request($_) } @{ $input->{encode} || [] } ],
);
print JSON::PP->new->canonical->encode(\%output), "\n";
