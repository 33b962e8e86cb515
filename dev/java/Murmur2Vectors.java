// Prints Kafka's Java murmur2 hash and default-partitioner choice for a fixed
// set of keys, as the TSV checked in at test-support/testdata/murmur2_vectors.tsv.
// Run through dev/java-murmur2-vectors, which puts kafka-clients on the class path.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class Murmur2Vectors {
    static final int[] PARTITION_COUNTS = {3, 7, 12};

    public static void main(String[] args) {
        List<byte[]> keys = new ArrayList<>();
        // Empty-ish and short keys: every tail length of the 4-byte block loop.
        keys.add(new byte[0]);
        keys.add(new byte[] {0});
        keys.add(new byte[] {0, 0, 0, 0});
        keys.add(utf8(" "));
        for (String s : new String[] {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
            keys.add(utf8(s));
        }
        // Typical application keys.
        for (int i = 0; i < 20; i++) {
            keys.add(utf8("key-" + i));
        }
        for (String s : new String[] {"user:42", "order-2024-0001", "0", "1", "10", "100", "-1", "null"}) {
            keys.add(utf8(s));
        }
        // Bytes with the high bit set (sign extension in the Java hash).
        keys.add(new byte[] {(byte) 0xff});
        keys.add(new byte[] {(byte) 0x80, (byte) 0x81, (byte) 0xfe});
        keys.add(new byte[] {(byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef, (byte) 0x01});
        // Big-endian integers as Kafka's IntegerSerializer / LongSerializer write them.
        for (int v : new int[] {0, 1, 42, -1, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            keys.add(new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v});
        }
        keys.add(new byte[] {0, 0, 0, 0, 0, 0, 0, 7});
        // UTF-8 keys with multi-byte characters.
        for (String s : new String[] {"é", "ключ", "日本語のキー", "🦀", "naïve café", "Ωmega-Σ"}) {
            keys.add(utf8(s));
        }
        // Long keys.
        keys.add(utf8("The quick brown fox jumps over the lazy dog"));
        keys.add(utf8("x".repeat(100)));
        keys.add(utf8("0123456789".repeat(25) + "abc"));
        byte[] ramp = new byte[1000];
        for (int i = 0; i < ramp.length; i++) {
            ramp[i] = (byte) (i * 31 + 7);
        }
        keys.add(ramp);

        StringBuilder out = new StringBuilder("key_hex\tmurmur2\tpartition_3\tpartition_7\tpartition_12\n");
        for (byte[] key : keys) {
            int hash = Utils.murmur2(key);
            out.append(hex(key)).append('\t').append(hash);
            for (int n : PARTITION_COUNTS) {
                int partition = Utils.toPositive(hash) % n;
                if (partition != BuiltInPartitioner.partitionForKey(key, n)) {
                    throw new IllegalStateException("formula disagrees with the producer's partitioner");
                }
                out.append('\t').append(partition);
            }
            out.append('\n');
        }
        System.out.print(out);
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) {
            sb.append(String.format("%02x", b));
        }
        return sb.toString();
    }
}
