import { Redirect, Tabs } from 'expo-router';
import { Text, type ColorValue } from 'react-native';

import { useSession } from '@/store/session';

function Icon({ glyph, color }: { glyph: string; color: ColorValue }) {
  return (
    <Text style={{ color, fontSize: 20 }} accessibilityElementsHidden importantForAccessibility="no">
      {glyph}
    </Text>
  );
}

export default function TabsLayout() {
  const status = useSession((s) => s.status);
  if (status !== 'signedIn') return <Redirect href="/sign-in" />;
  return (
    <Tabs screenOptions={{ tabBarActiveTintColor: '#1f6feb' }}>
      <Tabs.Screen
        name="index"
        options={{
          title: 'Chats',
          tabBarAccessibilityLabel: 'Chats',
          tabBarIcon: ({ color }) => <Icon glyph="💬" color={color} />,
        }}
      />
      <Tabs.Screen
        name="calls"
        options={{
          title: 'Calls',
          tabBarAccessibilityLabel: 'Calls',
          tabBarIcon: ({ color }) => <Icon glyph="📞" color={color} />,
        }}
      />
      <Tabs.Screen
        name="settings"
        options={{
          title: 'Settings',
          tabBarAccessibilityLabel: 'Settings',
          tabBarIcon: ({ color }) => <Icon glyph="⚙️" color={color} />,
        }}
      />
    </Tabs>
  );
}
